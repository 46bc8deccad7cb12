// sayiir-diesel dashboard: reloads the page every `data-refresh` seconds
// (chosen in the header, kept in the URL), paused while the tab is hidden.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-refresh")) || 0;
  if (seconds <= 0) { return; }
  var timer = null;
  function arm() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    if (!document.hidden) {
      timer = setTimeout(function () { window.location.reload(); }, seconds * 1000);
    }
  }
  document.addEventListener("visibilitychange", arm);
  arm();
}());
