/*
 * M-Pesa checkout modal, version 1.
 *
 *   <script src="https://<checkout host>/pay/assets/checkout-v1.js"></script>
 *   MpesaCheckout.open(session.url, { onResult: function (result) { ... } });
 *
 * Opens the hosted payment page of a checkout session (its `url`, created by the shop's server:
 * the browser never holds a merchant token) in an iframe over the shop's page. When the
 * customer has paid, or the session closed unpaid, or the customer closed the modal, calls
 * `onResult` once with { state: 'paid' | 'closed' | 'dismissed', session, receipt, outcome,
 * reason }. Only messages from the page's own origin about this very session are believed; the
 * shop's server confirms a payment from the session (GET /v1/checkout/sessions/{id}) or its
 * webhook before shipping anything.
 *
 * The shop's origin must be one of the deployment's allowed origins (CHECKOUT_ALLOWED_ORIGINS),
 * or the page refuses to be framed.
 */
(function () {
  'use strict';
  if (window.MpesaCheckout) return;

  var current = null;

  function style(element, rules) {
    for (var name in rules) element.style[name] = rules[name];
  }

  function finish(result) {
    if (!current) return;
    var done = current;
    current = null;
    window.removeEventListener('message', done.onMessage);
    document.removeEventListener('keydown', done.onKey);
    if (done.overlay.parentNode) done.overlay.parentNode.removeChild(done.overlay);
    if (done.previousFocus && done.previousFocus.focus) done.previousFocus.focus();
    if (typeof done.onResult === 'function') done.onResult(result);
  }

  function open(url, options) {
    options = options || {};
    if (current) return;
    var target = new URL(url, window.location.href);
    if (target.protocol !== 'https:' && target.protocol !== 'http:') {
      throw new Error('MpesaCheckout.open: the session url must be http(s)');
    }
    var session = target.pathname.split('/').filter(Boolean).pop() || '';
    target.searchParams.set('origin', window.location.origin);
    if (options.lang === 'en' || options.lang === 'sw') target.searchParams.set('lang', options.lang);

    var overlay = document.createElement('div');
    overlay.setAttribute('role', 'dialog');
    overlay.setAttribute('aria-modal', 'true');
    overlay.setAttribute('aria-label', options.label || 'M-Pesa payment');
    overlay.id = 'mpesa-checkout-modal';
    style(overlay, {
      position: 'fixed', inset: '0', zIndex: '2147483647', display: 'flex',
      alignItems: 'center', justifyContent: 'center', background: 'rgba(0, 0, 0, 0.6)'
    });
    var frame = document.createElement('iframe');
    frame.src = target.toString();
    frame.title = options.label || 'M-Pesa payment';
    frame.setAttribute('referrerpolicy', 'no-referrer');
    style(frame, {
      width: '100%', maxWidth: '28rem', height: '100%', maxHeight: '44rem',
      border: '0', borderRadius: '0.75rem', background: '#ffffff'
    });
    var close = document.createElement('button');
    close.type = 'button';
    close.textContent = '\u00d7';
    close.setAttribute('aria-label', options.closeLabel || 'Close');
    style(close, {
      position: 'absolute', top: '0.5rem', right: '0.5rem', width: '2.75rem', height: '2.75rem',
      fontSize: '1.75rem', lineHeight: '1', border: '0', borderRadius: '50%',
      background: '#ffffff', color: '#111111', cursor: 'pointer'
    });
    close.addEventListener('click', function () {
      finish({ state: 'dismissed', session: session });
    });
    overlay.appendChild(frame);
    overlay.appendChild(close);

    current = {
      overlay: overlay,
      onResult: options.onResult,
      previousFocus: document.activeElement,
      onMessage: function (event) {
        if (event.source !== frame.contentWindow || event.origin !== target.origin) return;
        var data = event.data || {};
        if (data.type !== 'mpesa-checkout' || data.session !== session) return;
        if (data.state !== 'paid' && data.state !== 'closed') return;
        var result = {
          state: data.state, session: session, receipt: data.receipt || null,
          outcome: data.outcome || null, reason: data.reason || null
        };
        // The customer sees the receipt a moment before the modal closes.
        window.setTimeout(function () { finish(result); }, data.state === 'paid' ? 1500 : 0);
      },
      onKey: function (event) {
        if (event.key === 'Escape') finish({ state: 'dismissed', session: session });
      }
    };
    window.addEventListener('message', current.onMessage);
    document.addEventListener('keydown', current.onKey);
    document.body.appendChild(overlay);
    frame.focus();
  }

  window.MpesaCheckout = { version: 1, open: open };
})();
