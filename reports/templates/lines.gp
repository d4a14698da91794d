# Lines over a numeric x axis, one series per data block; filled by scripts/kmlab/charts.py.
set terminal ${terminal}
set output '${output}'
set title "${title}\n${subtitle}" noenhanced font ",11"
set xlabel '${xlabel}' noenhanced
set ylabel '${ylabel}' noenhanced
set key outside right top noenhanced
set grid
${logscale}
set datafile separator '\t'
plot ${plots}
