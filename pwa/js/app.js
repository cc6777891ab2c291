/* plugpay: small progressive enhancements. Pages work without this file. */
(function () {
  "use strict";
  var doc = document;

  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
    });
  }

  function csrfToken() {
    var meta = doc.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // htmx requests that change something carry the CSRF token too.
  doc.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.verb !== "get") e.detail.headers["X-CSRF-Token"] = csrfToken();
  });

  function keyBytes(b64url) {
    var b64 = (b64url + "===".slice((b64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  // <button data-enable-push data-vapid-key="…" data-push-url="/…" [data-status="ID"]
  //   [data-msg-on|denied|error|unsupported="…"]>: data-push-state becomes working | on |
  // denied | error | unsupported, and data-msg-<state> goes into #ID (a role="status").
  function setState(btn, state) {
    btn.setAttribute("data-push-state", state);
    btn.disabled = state === "working" || state === "on" || state === "unsupported";
    var out = btn.dataset.status && doc.getElementById(btn.dataset.status);
    var msg = btn.getAttribute("data-msg-" + state);
    if (out && msg) out.textContent = msg;
    btn.dispatchEvent(new CustomEvent("plugpay:push", { bubbles: true, detail: { state: state } }));
  }

  async function enablePush(btn) {
    if (!("serviceWorker" in navigator && "PushManager" in window && "Notification" in window)) {
      return setState(btn, "unsupported");
    }
    setState(btn, "working");
    try {
      var permission = await Notification.requestPermission();
      if (permission !== "granted") return setState(btn, "denied");
      var reg = await navigator.serviceWorker.ready;
      var sub = await reg.pushManager.getSubscription();
      if (!sub) {
        sub = await reg.pushManager.subscribe({
          userVisibleOnly: true,
          applicationServerKey: keyBytes(btn.dataset.vapidKey || ""),
        });
      }
      var res = await fetch(btn.dataset.pushUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
        body: JSON.stringify(sub.toJSON ? sub.toJSON() : sub),
      });
      setState(btn, res.ok ? "on" : "error");
    } catch (err) {
      setState(btn, "error");
    }
  }

  // <button data-print> prints the page (no inline handler needed).
  doc.addEventListener("click", function (e) {
    var el = e.target.closest && e.target.closest("[data-enable-push], [data-print]");
    if (!el) return;
    e.preventDefault();
    if (el.hasAttribute("data-print")) window.print();
    else enablePush(el);
  });

  // <span data-started-at="ISO time" [data-ended-at="ISO time"]>: mm:ss, from one hour on
  // h:mm:ss, every second; kept out of any surrounding live region (aria-live="off").
  function two(n) {
    return (n < 10 ? "0" : "") + n;
  }
  function elapsed(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    return h ? h + ":" + two(m) + ":" + two(s) : two(m) + ":" + two(s);
  }
  function tick() {
    var now = Date.now();
    doc.querySelectorAll("[data-started-at]").forEach(function (el) {
      var start = Date.parse(el.dataset.startedAt);
      var end = el.dataset.endedAt ? Date.parse(el.dataset.endedAt) : now;
      if (isNaN(start) || isNaN(end)) return;
      if (!el.hasAttribute("aria-live")) el.setAttribute("aria-live", "off");
      var text = elapsed(Math.max(0, Math.floor((end - start) / 1000)));
      if (el.textContent !== text) el.textContent = text;
    });
  }
  tick();
  setInterval(tick, 1000);

  // After an event-stream update replaced the live figures: the clock at once (not up to a
  // second later), and the new state, when it changed, read out once through the page's
  // status region (<p id="live-status" role="status">) instead of the whole block.
  var announced = null;
  function settled() {
    tick();
    var live = doc.querySelector("#live [data-state]");
    var out = doc.getElementById("live-status");
    if (!live || !out) return;
    var state = live.getAttribute("data-state");
    if (announced === null) announced = state;
    if (state !== announced) {
      announced = state;
      out.textContent = live.getAttribute("data-announce") || "";
    }
  }
  doc.addEventListener("htmx:afterSwap", settled);
  settled();

  // <time datetime="ISO" data-ago>: "12 seconds ago", kept current every second in the
  // page's language (the server renders the first text).
  var lang = doc.documentElement.lang || "en";
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  function ago() {
    if (!relative) return;
    doc.querySelectorAll("time[data-ago]").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) return;
      var s = Math.round((at - Date.now()) / 1000);
      var text = s > -60 ? relative.format(Math.min(s, 0), "second")
        : s > -3600 ? relative.format(Math.round(s / 60), "minute")
        : relative.format(Math.round(s / 3600), "hour");
      if (el.textContent !== text) el.textContent = text;
    });
  }
  setInterval(ago, 1000);
  doc.addEventListener("htmx:afterSwap", ago);

  // <form data-confirm="question">: the first tap asks (the button says the question for a
  // few seconds, and the status region reads it out); a second tap meanwhile submits.
  // Without this file the form submits at once.
  var CONFIRM_MS = 5000;
  doc.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (!question) return;
    var until = Number(form.dataset.confirmUntil || 0);
    if (Date.now() < until) return; // the second tap: go
    e.preventDefault();
    var btn = form.querySelector("button");
    if (!btn) return;
    var label = btn.dataset.label || btn.textContent;
    btn.dataset.label = label;
    form.dataset.confirmUntil = String(Date.now() + CONFIRM_MS);
    btn.textContent = question;
    btn.setAttribute("data-asking", "");
    var out = doc.getElementById("live-status");
    if (out) out.textContent = question;
    btn.focus();
    setTimeout(function () {
      if (!btn.isConnected) return;
      form.dataset.confirmUntil = "";
      btn.textContent = label;
      btn.removeAttribute("data-asking");
    }, CONFIRM_MS);
  });

  // While the event stream is down the page says so (#stream-status), and says nothing
  // once it is back; the browser reconnects by itself.
  function streamStatus(down) {
    var el = doc.getElementById("stream-status");
    if (el) el.hidden = !down;
  }
  doc.addEventListener("htmx:sseError", function () { streamStatus(true); });
  doc.addEventListener("htmx:sseOpen", function () { streamStatus(false); });
})();
