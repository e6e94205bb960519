/* New messages without a reload, on an open conversation page (portal and staff).

   Every POLL_MS, while the page is visible, the page asks the server for the messages
   after the last one it shows (GET …/since?after=…, data attributes on the list:
   data-messages-since the address, data-messages-after the last message's id, which the
   X-Messages-After header of each answer moves on). "After" is in the order the messages
   were committed (their number in the conversation, messages.seq, never shown), so one
   begun earlier but sent later (a large file being checked) still comes. The
   server answers 204 when there is none, or with the new messages as HTML in the page's
   own markup (the same Jinja macro renders both), which this file adds to the list and
   announces in the page's status line (role="status": read out politely). Reading them
   there is reading them on the page: the server marks them read and, for staff, writes the
   visit to the client's access log, as a reload would.

   Polling, not server-sent events: production runs gunicorn with sync workers, where a
   held-open connection would take a whole worker for as long as a page is open; a short
   request every few seconds costs a worker milliseconds (shared/message_views.py). A
   hidden page (another tab, a locked phone) does not ask; it asks once when shown again.
   The requests are no use of the session: an open page never keeps a session alive, and
   when the session ended (a redirect to sign in) or the conversation is gone (404) the
   page stops asking. Without JavaScript nothing changes: a reload shows new messages.
   Every text comes from the server; static file, as the CSP allows no inline script. */
(function () {
  "use strict";

  var POLL_MS = 12000;

  function start() {
    var list = document.querySelector("ol[data-messages-since]");
    if (!list || !window.fetch || !document.createElement("template").content) { return; }
    var url = list.getAttribute("data-messages-since");
    var after = list.getAttribute("data-messages-after");
    var status = document.querySelector("[data-messages-status]");
    var timer = null;
    var asking = false;
    var stopped = false;

    function later() {
      clearTimeout(timer);
      if (!stopped && !document.hidden) { timer = setTimeout(ask, POLL_MS); }
    }

    function add(html, next) {
      var fragment = document.createElement("template");
      fragment.innerHTML = html;
      var items = fragment.content.querySelectorAll("ol > li");
      if (!items.length) { return; }
      var latest = document.getElementById("latest");
      if (latest) { latest.removeAttribute("id"); }
      for (var i = 0; i < items.length; i++) { list.appendChild(items[i]); }
      after = next;
      list.setAttribute("data-messages-after", next);
      var news = fragment.content.querySelector("[data-messages-news]");
      if (status && news) {
        // A new node each time, so that the same words ("1 new message") are read out
        // again for the next one.
        var said = document.createElement("span");
        said.textContent = news.textContent;
        status.replaceChildren(said);
      }
    }

    function ask() {
      if (asking || stopped || document.hidden) { return; }
      asking = true;
      fetch(url + "?after=" + encodeURIComponent(after), {
        credentials: "same-origin",
        redirect: "manual", // signed out: the sign-in page is no answer to add
        headers: { "Accept": "text/html" }
      }).then(function (response) {
        if (response.status === 204 || response.status >= 500) {
          return null; // nothing new, or the server is restarting: ask again later
        }
        var next = response.headers.get("X-Messages-After");
        if (!response.ok || !next) {
          stopped = true; // signed out, or the conversation is gone: a reload tells
          return null;
        }
        return response.text().then(function (html) { add(html, next); });
      }).catch(function () {
        return null; // offline for a moment: ask again at the next turn
      }).then(function () {
        asking = false;
        later();
      });
    }

    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        clearTimeout(timer);
      } else {
        ask();
      }
    });
    later();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
