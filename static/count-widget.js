// Rally's count widget for other sites. No cookies, no third parties: it asks the Rally it was
// loaded from for one campaign's count and writes it into the page.
//
//   <span data-rally-campaign="legal-advocacy">…</span>
//   <script src="https://your-rally.example/static/count-widget.js" defer></script>
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script ? new URL(script.src).origin : "";
  var spots = document.querySelectorAll("[data-rally-campaign]");
  Array.prototype.forEach.call(spots, function (spot) {
    var slug = encodeURIComponent(spot.getAttribute("data-rally-campaign"));
    fetch(base + "/api/campaigns/" + slug, { credentials: "omit", referrerPolicy: "no-referrer" })
      .then(function (res) { return res.ok ? res.json() : Promise.reject(res.status); })
      .then(function (c) {
        var link = document.createElement("a");
        link.href = base + "/campaigns/" + slug;
        link.textContent = c.signature_count.toLocaleString("en-GB") + " have signed “" + c.title + "”";
        spot.textContent = "";
        spot.appendChild(link);
      })
      .catch(function () { /* leave the fallback text in place */ });
  });
})();
