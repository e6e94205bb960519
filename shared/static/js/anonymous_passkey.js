/* The anonymous first contact with a passkey instead of a password
   (portal/anonymous.py, shared/services/anonymous_passkey.py).

   passkeys.js shows the choice only where this device can make a passkey. When it is
   chosen, sending the form first asks the server whether it would take the message
   (the begin endpoint checks the whole form and answers the creation options), then the
   device makes the passkey, then the form goes as an ordinary form with the new
   credential in a hidden field: the server checks it all again and stores the message
   only together with the account and its passkey. If the server would not take the
   form, it goes the ordinary way at once and the page shows what is wrong; a cancelled
   passkey sends nothing. Without JavaScript the choice stays hidden and the password is
   the way. */
(function () {
  "use strict";

  function setUp() {
    var form = document.querySelector("form[data-anonymous-passkey]");
    if (!form) { return; }
    var offer = form.querySelector("[data-passkey-offer]");
    var toggle = document.getElementById("anonymous-with-passkey");
    var passwordWay = document.getElementById("anonymous-password-way");
    var credentialField = document.getElementById("anonymous-credential");
    var status = form.querySelector("[data-anonymous-passkey-status]");
    if (!offer || !toggle || !passwordWay || !credentialField) { return; }

    function offered() { return offer.getAttribute("data-passkey-checked") === "offered"; }

    function update() {
      if (!offered()) { toggle.checked = false; }  /* never sent where it cannot work */
      passwordWay.hidden = toggle.checked;
    }
    toggle.addEventListener("change", function () {
      if (status) { status.textContent = ""; }
      update();
    });
    new MutationObserver(update).observe(offer, { attributes: true,
                                                 attributeFilter: ["data-passkey-checked"] });
    update();

    function sendAsItIs() {
      /* The button is named "submit", which hides form.submit. */
      HTMLFormElement.prototype.submit.call(form);
    }

    var busy = false;
    form.addEventListener("submit", function (event) {
      if (!toggle.checked || !offered() || credentialField.value) { return; }
      event.preventDefault();
      if (busy) { return; }
      busy = true;
      if (status) { status.textContent = ""; }
      fetch(form.getAttribute("data-begin"), {
        method: "POST", credentials: "same-origin", body: new FormData(form)
      }).then(function (response) {
        if (!response.ok) { var refused = new Error("refused"); refused.resubmit = true; throw refused; }
        return response.json();
      }).then(function (options) {
        var helpers = window.einblickPasskeys;
        return navigator.credentials.create({ publicKey: helpers.creationOptions(options) });
      }).then(function (cred) {
        if (!cred) { throw new Error("cancelled"); }
        credentialField.value = JSON.stringify(window.einblickPasskeys.credentialJSON(cred));
        sendAsItIs();
      }).catch(function (error) {
        busy = false;
        if (error && error.resubmit) { sendAsItIs(); return; }
        var cancelled = !error || error.name === "NotAllowedError" || error.name === "AbortError"
          || error.message === "cancelled";
        if (status) {
          status.textContent = form.getAttribute(cancelled ? "data-msg-cancelled" : "data-msg-failed");
        }
        toggle.focus();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
}());
