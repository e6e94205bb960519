/* Passkeys for Einblick: calls navigator.credentials for buttons marked data-passkey.
   Static file (the CSP allows no inline script). Without JavaScript the buttons stay
   hidden and every other way to sign in keeps working. */
(function () {
  "use strict";

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) { bin += String.fromCharCode(bytes[i]); }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function csrfToken() {
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.error || response.statusText);
          error.redirect = data.redirect;
          throw error;
        }
        return data;
      });
    });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function credentialJSON(cred) {
    var r = cred.response;
    var response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toB64url(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toB64url(r.authenticatorData);
      response.signature = toB64url(r.signature);
      if (r.userHandle) { response.userHandle = toB64url(r.userHandle); }
    }
    return {
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: response,
      authenticatorAttachment: cred.authenticatorAttachment || null,
      clientExtensionResults: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  /* for anonymous_passkey.js */
  window.einblickPasskeys = { creationOptions: creationOptions, credentialJSON: credentialJSON };

  function status(box, message) {
    var target = box.querySelector("[data-passkey-status]");
    if (target) { target.textContent = message || ""; }
  }

  var pendingAutofill = null;  /* the autofill request, aborted when the button is used */
  var autofillBegin = null;    /* its options request while in flight */
  var buttonUsed = false;
  var formSent = false;        /* a form of the page went off: no autofill after it */

  /* The autofill's request for a challenge writes the session cookie when it is answered.
     A form sent meanwhile (a password manager fills and sends the password the moment the
     page loads) would get its answer, the pending sign-in, overwritten by that later
     cookie. So a form waits for the challenge's answer, then goes on its own. */
  var resending = false;       /* the held form is being sent again, by us */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (autofillBegin && !resending) {
      event.preventDefault();
      if (form.hasAttribute("data-held")) { return; }  /* a second tap while held */
      form.setAttribute("data-held", "");
      formSent = true;  /* it will go: the autofill does not start a sign-in after it */
      var submitter = event.submitter || null;
      autofillBegin.catch(function () {}).then(function () {
        resending = true;
        try {
          if (form.requestSubmit) { form.requestSubmit(submitter); } else { form.submit(); }
        } finally {
          resending = false;
          form.removeAttribute("data-held");
        }
      });
      return;
    }
    if (!event.defaultPrevented) { formSent = true; }
  });
  /* A page that comes back from the browser's back/forward cache starts over. */
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    formSent = false;
    document.querySelectorAll("form[data-held]").forEach(function (form) {
      form.removeAttribute("data-held");
    });
  });

  function run(box, mediation) {
    if (mediation && (buttonUsed || formSent)) { return Promise.resolve(); }
    if (!mediation) {
      buttonUsed = true;
      if (pendingAutofill) { pendingAutofill.abort(); pendingAutofill = null; }
    }
    var mode = box.getAttribute("data-passkey");
    var nameInput = box.querySelector("[data-passkey-name]");
    var extra = nameInput ? { name: nameInput.value } : {};
    var begin = box.getAttribute("data-begin");
    var finish = box.getAttribute("data-finish");
    /* The server keeps one challenge per purpose: a tap on a slow phone must not ask for
       its challenge before the autofill's request for one has come back. */
    var ready = (!mediation && autofillBegin) ? autofillBegin.catch(function () {})
                                              : Promise.resolve();
    var options = ready.then(function () { return post(begin); });
    if (mediation) {
      autofillBegin = options;
      /* answered or failed (too many requests, no network): no form waits for it longer */
      options.catch(function () {}).then(function () {
        if (autofillBegin === options) { autofillBegin = null; }
      });
    }
    return options.then(function (options) {
      if (mode === "create") {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      }
      var request = { publicKey: requestOptions(options) };
      if (mediation) {
        autofillBegin = null;
        if (buttonUsed || formSent) { return null; }  /* the button or a form took over */
        pendingAutofill = new AbortController();
        request.mediation = mediation;
        request.signal = pendingAutofill.signal;
      }
      return navigator.credentials.get(request);
    }).then(function (cred) {
      if (!cred) { throw new Error(box.getAttribute("data-msg-cancelled")); }
      extra.credential = credentialJSON(cred);
      return post(finish, extra);
    }).then(function (result) {
      window.location.assign(result.redirect || window.location.href);
    }).catch(function (error) {
      if (error && error.redirect) { window.location.assign(error.redirect); return; }
      if (mediation) { return; }  /* autofill was aborted or dismissed: stay quiet */
      var cancelled = error && (error.name === "NotAllowedError" || error.name === "AbortError");
      status(box, cancelled ? box.getAttribute("data-msg-cancelled")
                            : (error && error.message) || box.getAttribute("data-msg-failed"));
      offerFallback(box);
    });
  }

  /* A box with data-passkey-fallback names the field of the other way on the same page
     (e.g. the password at sign-up): after a failed or cancelled passkey it gets the focus. */
  function offerFallback(box) {
    var id = box.getAttribute("data-passkey-fallback");
    var field = id ? document.getElementById(id) : null;
    if (!field) { return; }
    field.scrollIntoView({ block: "center" });
    field.focus({ preventScroll: true });
  }

  /* Sections marked data-passkey-offer (creating the first passkey at sign-up) appear only
     where the device itself can make a passkey: a phone without a screen lock or an old
     browser answers false to isUserVerifyingPlatformAuthenticatorAvailable, and the
     password shown beside them is the way there. (Conditional mediation is no sign of
     this: headless and desktop Chromium report it without any authenticator, and
     navigator.credentials.create then waits forever.) Each section gets
     data-passkey-checked once decided. */
  function offerWherePossible() {
    var offers = document.querySelectorAll("[data-passkey-offer]");
    if (!offers.length) { return; }
    function decide(ok) {
      offers.forEach(function (offer) {
        offer.hidden = !ok;
        offer.setAttribute("data-passkey-checked", ok ? "offered" : "not-offered");
      });
    }
    var api = window.PublicKeyCredential;
    if (!api || !navigator.credentials || !api.isUserVerifyingPlatformAuthenticatorAvailable) {
      decide(false);
      return;
    }
    api.isUserVerifyingPlatformAuthenticatorAvailable()
      .then(function (ok) { decide(!!ok); }, function () { decide(false); });
  }

  function setUp() {
    offerWherePossible();
    var boxes = document.querySelectorAll("[data-passkey]");
    var supported = !!(window.PublicKeyCredential && navigator.credentials);
    boxes.forEach(function (box) {
      var unsupported = box.querySelector("[data-passkey-unsupported]");
      var controls = box.querySelector("[data-passkey-controls]");
      if (!supported) { if (unsupported) { unsupported.hidden = false; } return; }
      if (controls) { controls.hidden = false; }
      var button = box.querySelector("button[data-passkey-start]");
      if (button) {
        button.addEventListener("click", function (event) {
          event.preventDefault();
          status(box, "");
          button.disabled = true;
          run(box).then(function () { button.disabled = false; });
        });
      }
      if (box.hasAttribute("data-passkey-autofill") && PublicKeyCredential.isConditionalMediationAvailable) {
        PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
          if (ok) { run(box, "conditional"); }
        });
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUp);
  } else {
    setUp();
  }
}());
