/* The idle warning: two minutes before the idle limit ends the session, the banner in
   base.html offers "Stay signed in"; when the time is up it says the user was signed out.
   Every text is in the page (translated on the server); this file only shows and hides
   parts. Before it warns or says the session ended it asks the server how long is left
   (another tab may have used the session; asking does not count as use), and it keeps the
   session alive only when the user presses the button, so an open tab never keeps a
   session alive by itself. Static file: the CSP allows no inline script. */
(function () {
  "use strict";

  function start() {
    var banner = document.querySelector("[data-idle-seconds-left]");
    if (!banner) { return; }
    var warning = banner.querySelector("[data-idle-state=warning]");
    var ended = banner.querySelector("[data-idle-state=ended]");
    var stay = banner.querySelector("[data-idle-stay]");
    var warnMs = parseInt(banner.getAttribute("data-idle-warn-seconds"), 10) * 1000;
    var deadline = 0;
    var timer = null;
    var typingIn = null; // where the user was when the warning came: focus goes back there
    var confirmed = null; // the state the server confirmed for the current deadline

    function show(state) {
      if (state === "warning" && warning.hidden) { typingIn = document.activeElement; }
      warning.hidden = state !== "warning";
      ended.hidden = state !== "ended";
    }

    function stateAt(left) {
      return left <= 0 ? "ended" : (left <= warnMs ? "warning" : null);
    }

    // Timers sleep in background tabs and on a locked phone: each check reads the clock.
    function check() {
      clearTimeout(timer);
      var left = deadline - Date.now();
      var state = stateAt(left);
      if (state !== null && confirmed !== state) {
        askServer();
        return;
      }
      show(state);
      if (state === "warning") {
        timer = setTimeout(check, left);
      } else if (state === null) {
        confirmed = null;
        timer = setTimeout(check, left - warnMs);
      }
    }

    function askServer() {
      fetch(banner.getAttribute("data-idle-status"), { credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { return { seconds_left: 0 }; }
          return response.ok ? response.json() : null;
        })
        .catch(function () { return null; }) // offline: trust the page's own count
        .then(function (data) {
          if (data && typeof data.seconds_left === "number") {
            deadline = Date.now() + data.seconds_left * 1000;
          }
          confirmed = stateAt(deadline - Date.now());
          check();
        });
    }

    function arm(seconds) {
      deadline = Date.now() + seconds * 1000;
      check();
    }

    stay.addEventListener("click", function () {
      var meta = document.querySelector("meta[name=csrf-token]");
      stay.disabled = true;
      fetch(banner.getAttribute("data-idle-keep-alive"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": meta ? meta.content : "" }
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (response.ok && data.signed_in) {
            arm(data.seconds_left);
            if (typingIn && typingIn !== document.body && document.contains(typingIn)) {
              typingIn.focus();
            }
          } else if (response.status === 401) {
            deadline = 0;
            check();
          }
        });
      }).catch(function () {
        /* No connection: the warning stays and the button can be pressed again. */
      }).then(function () {
        stay.disabled = false;
      });
    });

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && deadline) { check(); }
    });
    banner.hidden = false;
    arm(parseInt(banner.getAttribute("data-idle-seconds-left"), 10));
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
