/* A stand-in for https://js.stripe.com/v3/ in browser tests, which run offline.
 *
 * It is not Stripe.js: it records how the page calls the documented surface
 * (Stripe(key), stripe.elements, elements.create, element.on/mount,
 * stripe.confirmPayment) in window.stripeStandin.calls, and answers
 * confirmPayment the way a test sets:
 *   window.stripeStandin.next = {error: {type: "card_error", message: "..."}}
 *     -> resolves with that result (a decline);
 *   otherwise -> goes to confirmParams.return_url, as Stripe does once the
 *     payment is confirmed (the test confirms the PaymentIntent on localstripe).
 * window.stripeStandin.fire(type, event, payload) calls a handler the page
 * registered, e.g. the Express Checkout Element's "confirm".
 */
(function () {
  "use strict";
  var standin = { calls: [], handlers: {}, next: null };
  window.stripeStandin = standin;

  standin.fire = function (type, name, payload) {
    var handler = standin.handlers[type + ":" + name];
    if (!handler) throw new Error("no " + name + " handler on " + type);
    return handler(payload);
  };

  function element(type) {
    return {
      on: function (name, handler) {
        standin.calls.push(["on", type, name]);
        standin.handlers[type + ":" + name] = handler;
      },
      mount: function (target) {
        standin.calls.push(["mount", type, typeof target === "string" ? target : "#" + target.id]);
      }
    };
  }

  window.Stripe = function (key) {
    standin.calls.push(["Stripe", key]);
    return {
      elements: function (options) {
        standin.calls.push(["elements", options]);
        return {
          create: function (type, options) {
            standin.calls.push(["create", type, options]);
            return element(type);
          }
        };
      },
      confirmPayment: function (options) {
        standin.calls.push(["confirmPayment", { confirmParams: options.confirmParams, elements: !!options.elements }]);
        var result = standin.next;
        standin.next = null;
        if (result) return Promise.resolve(result);
        window.location.assign(options.confirmParams.return_url);
        return new Promise(function () {});
      }
    };
  };
})();
