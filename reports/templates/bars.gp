# Horizontal-label bar chart with an optional reference line; filled by scripts/kmlab/charts.py.
set terminal ${terminal}
set output '${output}'
set title "${title}\n${subtitle}" noenhanced font ",11"
set ylabel '${ylabel}' noenhanced
set xlabel '${xlabel}' noenhanced
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -45 noenhanced
set key outside right top noenhanced
set grid ytics
${yrange}
${logscale}
set datafile separator '\t'
plot ${plots}
