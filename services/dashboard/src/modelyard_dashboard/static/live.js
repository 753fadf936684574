// Live refresh of a dashboard page, without reloading it.
//
// The element #live names a URL (data-live-url) that returns the same markup as the element's
// content, with current figures; every data-live-interval seconds this script fetches it and swaps
// it in. It pauses while the tab is hidden and when the user presses "Pause live updates" (moving
// content must be stoppable). A 401 means the session ended: reloading sends the user to sign-in.
(function () {
  "use strict";

  var region = document.getElementById("live");
  if (!region || !region.dataset.liveUrl) {
    return;
  }
  var url = region.dataset.liveUrl;
  var intervalMs = Math.max(1, Number(region.dataset.liveInterval) || 5) * 1000;
  var status = document.getElementById("live-status");
  var toggle = document.getElementById("live-toggle");
  var paused = false;
  var inFlight = false;
  var failing = false;

  function say(text) {
    if (status) {
      status.textContent = text;
    }
  }

  function refresh() {
    if (paused || inFlight || document.hidden) {
      return;
    }
    inFlight = true;
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.reload();
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        region.innerHTML = html;
        region.dataset.refreshed = String(Date.now());
        // The status line is announced by screen readers: only changes of state go there, not every refresh.
        if (failing) {
          failing = false;
          say("Live updates work again.");
        }
      })
      .catch(function (error) {
        failing = true;
        say("Live updates failed (" + error.message + "); retrying.");
      })
      .finally(function () {
        inFlight = false;
      });
  }

  if (toggle) {
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      paused = !paused;
      toggle.setAttribute("aria-pressed", String(paused));
      toggle.textContent = paused ? "Resume live updates" : "Pause live updates";
      say(paused ? "Live updates paused." : "Live updates resumed.");
      if (!paused) {
        refresh();
      }
    });
  }
  window.setInterval(refresh, intervalMs);
})();
