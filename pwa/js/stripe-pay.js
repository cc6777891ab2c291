/* plugpay: pay the hold with Stripe's Payment Element (cards) and Express Checkout
 * Element (Apple Pay / Google Pay where the device has them).
 *
 * Untested by the test suite: js.stripe.com cannot be reached offline, so this
 * file was only checked against Stripe.js's reference (stripe.elements,
 * elements.create, stripe.confirmPayment, stripe.handleNextAction, the Express
 * Checkout "confirm" event).
 * The tests play its part over the Stripe API instead. It is kept small on
 * purpose; the server trusts none of it: /pay/<id>/return reads the
 * PaymentIntent before anything starts.
 */
(function () {
  "use strict";
  var form = document.getElementById("payment-form");
  var errorBox = document.getElementById("payment-error");
  if (!form || !errorBox) return;
  var data = form.dataset;
  var lang = data.lang === "de" ? "de" : "en";
  var TEXT = {
    en: {
      failed: "The payment did not go through. Please try again or use another card.",
      unavailable: "Card payment could not load. Please check your connection and reload the page."
    },
    de: {
      failed: "Die Zahlung hat nicht geklappt. Bitte versuchen Sie es erneut oder nehmen Sie eine andere Karte.",
      unavailable: "Die Kartenzahlung konnte nicht laden. Bitte prüfen Sie Ihre Verbindung und laden Sie die Seite neu."
    }
  }[lang];
  var button = form.querySelector('button[type="submit"]');
  var busy = false;

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function setBusy(on) {
    busy = on;
    if (button) button.disabled = on;
    if (on) errorBox.hidden = true;
  }

  if (typeof Stripe !== "function") {
    showError(TEXT.unavailable);
    return;
  }

  var stripe, elements;
  try {
    stripe = Stripe(data.publishableKey);
    elements = stripe.elements({ clientSecret: data.clientSecret, locale: lang });
  } catch (err) {
    showError(TEXT.unavailable);
    return;
  }

  // Resolves with an error only: when the hold is confirmed (after any 3-D Secure
  // check in Stripe's modal or the bank's page), Stripe sends the browser on to
  // return_url, where the server reads the PaymentIntent.
  function pay() {
    return stripe
      .confirmPayment({
        elements: elements,
        confirmParams: { return_url: location.origin + data.returnUrl }
      })
      .then(
        function (result) { return result.error; },
        function () { return {}; }
      );
  }

  // Declines and invalid details come with Stripe's message for the cardholder,
  // in the page's language; anything else gets plain words of ours.
  function explain(error) {
    var forDriver = error.type === "card_error" || error.type === "validation_error";
    return forDriver && error.message ? error.message : TEXT.failed;
  }

  // A hold on a saved card that the bank wants confirmed (one-tap start): only the
  // bank's check is left, in Stripe's modal; then the server reads the hold. Where
  // that cannot run (Stripe left the hold without its card: the bank refused it
  // off-session), the card form below takes over, the saved card among its choices.
  if (data.nextAction === "1") {
    setBusy(true);
    stripe.handleNextAction({ clientSecret: data.clientSecret }).then(function (result) {
      if (!result.error) {
        location.assign(data.returnUrl);
        return;
      }
      showError(explain(result.error));
      setBusy(false);
      mountForm();
    });
    return;
  }
  mountForm();

  function mountForm() {
    var payment = elements.create("payment", {
      layout: "tabs",
      wallets: { applePay: "never", googlePay: "never" } // shown as Express Checkout buttons
    });
    payment.on("loaderror", function () { showError(TEXT.unavailable); });
    payment.mount("#payment-element");

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (busy) return;
      setBusy(true);
      pay().then(function (error) {
        if (error) showError(explain(error));
        setBusy(false); // the driver can try again, or another card
      });
    });

    var expressBox = document.getElementById("express-checkout");
    if (!expressBox) return;
    var express = elements.create("expressCheckout", {
      paymentMethods: { link: "never", paypal: "never", amazonPay: "never", klarna: "never" }
    });
    express.on("ready", function (event) {
      expressBox.hidden = !event.availablePaymentMethods;
    });
    express.on("confirm", function (event) {
      setBusy(true);
      pay().then(function (error) {
        if (error) {
          event.paymentFailed({ reason: "fail" });
          showError(explain(error));
        }
        setBusy(false);
      });
    });
    express.mount(expressBox);
  }
})();
