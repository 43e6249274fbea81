/* ROI page: draws the Plotly figures that the server embedded as JSON (#roi-figures, written
   by Django's json_script), on load and again whenever HTMX swaps in a new report. This file
   holds no data; every chart is described by the server (dashboard/roi_charts.py). */
(function () {
  "use strict";

  var CONFIG = {
    displaylogo: false,
    // Touch screens show the mode bar all the time, over the legend; there it stays away.
    displayModeBar: window.matchMedia("(hover: hover)").matches ? "hover" : false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "zoom2d", "pan2d", "zoomIn2d", "zoomOut2d", "autoScale2d",
                             "resetScale2d"],
    toImageButtonOptions: {format: "png", scale: 2, filename: "roi-chart"}
  };

  function draw() {
    var source = document.getElementById("roi-figures");
    if (!source || !window.Plotly) {
      return;
    }
    var figures = JSON.parse(source.textContent);
    var view = document.getElementById("roi-view");
    var report = view ? view.getAttribute("data-report") || "" : "";
    document.querySelectorAll("[data-roi-chart]").forEach(function (element) {
      var figure = figures[element.getAttribute("data-roi-chart")];
      if (!figure) {
        return;
      }
      if (!element._fullLayout) {
        // Not a live plot: empty, or a snapshot from the history cache holding a dead copy.
        element.textContent = "";
      }
      // data-drawn names the report the chart shows, so a test (or a person in the devtools)
      // can tell a redrawn chart from the one before.
      window.Plotly.react(element, figure.data, figure.layout, CONFIG).then(function () {
        element.setAttribute("data-drawn", report);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  // After a swap of the report (a preset, a new range, another grouping) and after the back
  // button restores a page from HTMX's history cache, whose snapshot holds no live charts.
  document.addEventListener("htmx:afterSettle", draw);
  document.addEventListener("htmx:historyRestore", draw);
})();
