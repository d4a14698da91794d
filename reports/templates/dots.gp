# A dot plot: one row per lock, a marker per series at the median with the
# min-max over repetitions as a horizontal bar; filled by scripts/kmlab/canvas.py.
# Rows read top down; labels sit on the left where they have room.
set terminal ${terminal}
set output '${output}'
set title "${title}\n${subtitle}" noenhanced font ",11"
set xlabel '${xlabel}' noenhanced
set ytics (${ytics}) noenhanced nomirror
set yrange [${rows} - 0.4 : -0.6]
set grid xtics
set key outside right top noenhanced
set bars small
${axes}
${extra}
set datafile separator '\t'
plot ${plots}
