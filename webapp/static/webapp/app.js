/*
 * FedTrack — small progressive enhancements used on every page.
 * No inline scripts or styles anywhere: this file sets what templates cannot
 * without a `style` attribute (progress widths) and counts selected datasets.
 */
(function () {
  "use strict";

  /** Width of every `.progress-bar[data-current][data-total]` (rounds done / total). */
  function initProgressBars(root) {
    root.querySelectorAll(".progress-bar[data-total]").forEach(function (bar) {
      var current = Number(bar.dataset.current) || 0;
      var total = Number(bar.dataset.total) || 0;
      var pct = total > 0 ? Math.min(100, Math.max(0, (current / total) * 100)) : 0;
      bar.style.width = pct + "%";
    });
  }

  /** "N datasets selected" next to the Start training button (datasets page). */
  function initSelectionCount(root) {
    var form = root.getElementById("start-training-form");
    var output = root.querySelector("[data-selection-count]");
    if (!form || !output) return;

    function update() {
      var boxes = form.querySelectorAll('input[type="checkbox"][name="datasets"]');
      var checked = form.querySelectorAll('input[type="checkbox"][name="datasets"]:checked').length;
      var text;
      if (boxes.length === 0) {
        text = "No usable dataset is available yet.";
      } else if (checked === 0) {
        text = "Select at least one dataset.";
      } else {
        text = checked + (checked === 1 ? " dataset selected." : " datasets selected.");
      }
      if (output.textContent !== text) output.textContent = text;
    }

    form.addEventListener("change", function (event) {
      if (event.target && event.target.name === "datasets") update();
    });
    // Back to this page: the browser puts the ticks back (from its back-forward cache, or by
    // restoring the form after parsing it) without a change event, so count them again.
    window.addEventListener("pageshow", update);
    update();
  }

  function init() {
    initProgressBars(document);
    initSelectionCount(document);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
