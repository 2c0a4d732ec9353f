// Progressive enhancement only: every page works without this file.
// Quick exit: leave for a neutral site and replace this page in history so Back does not return.
(function () {
  "use strict";
  // replace() alone: it swaps this page out of history. (window.open(url, "_self") as well
  // could commit first and leave this page behind Back; the referrer is already withheld by
  // Referrer-Policy: no-referrer.)
  function leave(url) {
    window.location.replace(url);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var link = document.getElementById("quick-exit");
    if (!link) return;
    link.addEventListener("click", function (event) {
      event.preventDefault();
      leave(link.href);
    });
    var presses = [];
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") return;
      var now = Date.now();
      presses = presses.filter(function (t) { return now - t < 1500; });
      presses.push(now);
      if (presses.length >= 3) leave(link.href);
    });
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
