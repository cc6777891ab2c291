/* plugpay: save a card with Stripe's Payment Element in setup mode.
 *
 * Untested by the test suite for the same reason as stripe-pay.js (js.stripe.com
 * cannot be reached offline); checked against Stripe.js's reference
 * (stripe.elements with a SetupIntent's clientSecret, stripe.confirmSetup).
 * The server trusts none of it: /me/cards/setup/<id>/return reads the SetupIntent.
 */
(function () {
  "use strict";
  var form = document.getElementById("setup-form");
  var errorBox = document.getElementById("payment-error");
  if (!form || !errorBox) return;
  var data = form.dataset;
  var lang = data.lang === "de" ? "de" : "en";
  var TEXT = {
    en: {
      failed: "The card was not saved. Please try again or use another card.",
      unavailable: "Card entry could not load. Please check your connection and reload the page."
    },
    de: {
      failed: "Die Karte wurde nicht gespeichert. Bitte versuchen Sie es erneut oder nehmen Sie eine andere Karte.",
      unavailable: "Die Karteneingabe konnte nicht laden. Bitte prüfen Sie Ihre Verbindung und laden Sie die Seite neu."
    }
  }[lang];
  var button = form.querySelector('button[type="submit"]');
  function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }
  if (typeof Stripe !== "function") { showError(TEXT.unavailable); return; }
  var stripe, elements;
  try {
    stripe = Stripe(data.publishableKey);
    elements = stripe.elements({ clientSecret: data.clientSecret, locale: lang });
  } catch (err) { showError(TEXT.unavailable); return; }
  var element = elements.create("payment", { layout: "tabs" });
  element.on("loaderror", function () { showError(TEXT.unavailable); });
  element.mount("#payment-element");
  var busy = false;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    if (button) button.disabled = true;
    errorBox.hidden = true;
    stripe
      .confirmSetup({ elements: elements, confirmParams: { return_url: location.origin + data.returnUrl } })
      .then(function (result) { return result.error; }, function () { return {}; })
      .then(function (error) {
        if (error) {
          var forDriver = error.type === "card_error" || error.type === "validation_error";
          showError(forDriver && error.message ? error.message : TEXT.failed);
        }
        busy = false;
        if (button) button.disabled = false;
      });
  });
})();
