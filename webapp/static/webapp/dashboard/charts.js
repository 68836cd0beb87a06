/*
 * The selected client's two charts (Chart.js, served from node_modules as
 * /static/vendor/chartjs/chart.umd.js and loaded before the modules, as window.Chart). Each
 * chart is created once and updated in place, so switching clients or polling does not
 * rebuild a canvas.
 */
import { DASH, formatLoss, formatSeconds, isNumber, toPercent } from "./format.js";

/**
 * The series the charts draw from one performance answer: accuracy as a percentage, the
 * losses and response times as numbers, any missing value as null (a gap in the line).
 */
export function performanceSeries(perf) {
  const list = (key) => (perf && Array.isArray(perf[key]) ? perf[key] : []);
  const numbers = (key) => list(key).map((v) => (isNumber(v) ? v : null));
  return {
    labels: list("labels").slice(),
    accuracy: list("accuracy").map(toPercent),
    loss: numbers("loss"),
    trainLoss: numbers("train_loss"),
    responseTime: numbers("response_time")
  };
}

/** The canvas's text for screen readers: the latest round's figures, or null with none. */
export function describeLatestRound(series) {
  const last = series.labels.length - 1;
  if (last < 0) return null;
  const accuracy = series.accuracy[last] == null ? DASH : series.accuracy[last].toFixed(1) + "%";
  return `Accuracy and loss per round. Latest, ${series.labels[last]}: accuracy ${accuracy},` +
    ` loss ${formatLoss(series.loss[last])}.`;
}

function chartLibrary() {
  return typeof window.Chart === "function" ? window.Chart : null;
}

function animation() {
  const reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  return reduced ? false : { duration: 250 };
}

/** One line of the performance chart; exported for its tests. */
export function lineSeries(label, yAxisID, colour, style) {
  return {
    label,
    data: [],
    yAxisID,
    borderColor: colour,
    backgroundColor: colour + "26", // the line's colour at 15% for the points' fill
    tension: 0.25,
    spanGaps: false, // a round the client missed is a gap, not a line to the next
    ...style
  };
}

/** Accuracy (%, left axis) and the evaluation and training losses (right axis) per round. */
export function createPerformanceChart(canvas) {
  const Chart = chartLibrary();
  if (!canvas || !Chart) return null;
  return new Chart(canvas, {
    type: "line",
    data: {
      labels: [],
      datasets: [
        lineSeries("Accuracy (%, evaluation)", "yAccuracy", "#0a58ca", { pointRadius: 3 }),
        lineSeries("Loss (evaluation)", "yLoss", "#b02a37",
          { borderDash: [6, 4], pointStyle: "rectRot", pointRadius: 4 }),
        lineSeries("Loss (training)", "yLoss", "#9a4a00",
          { borderDash: [2, 3], pointStyle: "triangle", pointRadius: 4 })
      ]
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: animation(),
      interaction: { mode: "index", intersect: false },
      scales: {
        yAccuracy: {
          type: "linear",
          position: "left",
          min: 0,
          max: 100,
          title: { display: true, text: "Accuracy (%)" },
          ticks: { callback: (value) => value + "%" }
        },
        yLoss: {
          type: "linear",
          position: "right",
          beginAtZero: true,
          title: { display: true, text: "Loss" },
          grid: { drawOnChartArea: false }
        }
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            label(ctx) {
              const v = ctx.parsed.y;
              if (v == null) return ctx.dataset.label + ": " + DASH;
              return ctx.datasetIndex === 0
                ? "Accuracy: " + v.toFixed(1) + "%"
                : ctx.dataset.label + ": " + v.toFixed(4);
            }
          }
        }
      }
    }
  });
}

/** Response time per round, as bars. */
export function createResponseTimeChart(canvas) {
  const Chart = chartLibrary();
  if (!canvas || !Chart) return null;
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: [],
      datasets: [{ label: "Response time (s)", data: [], backgroundColor: "#0b7285" }]
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: animation(),
      scales: { y: { beginAtZero: true, title: { display: true, text: "Seconds" } } },
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: { label: (ctx) => formatSeconds(ctx.parsed.y) } }
      }
    }
  });
}

/** Draw a client's series on both charts (either may be null when Chart.js is missing). */
export function drawSeries(performance, responseTime, series) {
  if (performance) {
    performance.data.labels = series.labels;
    performance.data.datasets[0].data = series.accuracy;
    performance.data.datasets[1].data = series.loss;
    performance.data.datasets[2].data = series.trainLoss;
    // Sites that report no training loss would otherwise show an empty legend entry.
    performance.data.datasets[2].hidden = !series.trainLoss.some(isNumber);
    performance.update();
  }
  if (responseTime) {
    responseTime.data.labels = series.labels.slice();
    responseTime.data.datasets[0].data = series.responseTime;
    responseTime.update();
  }
}

export function clearChart(chart) {
  if (!chart) return;
  chart.data.labels = [];
  for (const dataset of chart.data.datasets) dataset.data = [];
  chart.update();
}
