# Lines over a numeric x axis, every point with its spread (min-max over
# repetitions as error bars); filled by scripts/kmlab/canvas.py.
set terminal ${terminal}
set output '${output}'
set title "${title}\n${subtitle}" noenhanced font ",11"
set xlabel '${xlabel}' noenhanced
set ylabel '${ylabel}' noenhanced
set key outside right top noenhanced spacing 1.15
set grid
set bars small
${axes}
${extra}
set datafile separator '\t'
plot ${plots}
