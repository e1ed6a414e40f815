// The hosted payment page's behaviour. The page works without it (the form posts, a waiting
// page refreshes itself, links lead back to the shop); this only makes it quicker and kinder.
// No framework, no inline handlers: the page's CSP allows this file and nothing else.
(() => {
  'use strict';

  const body = document.body;
  const data = body.dataset;
  const lang = document.documentElement.lang === 'sw' ? 'sw' : 'en';
  const state = data.state;
  const framed = window.parent !== window;
  const isHttp = (url) => typeof url === 'string' && /^https?:\/\//i.test(url);

  // The same words as phone_problem_message in i18n.rs (a test there keeps them equal).
  const PROBLEMS = {
    en: {
      empty: "Enter your M-Pesa phone number, e.g. 0712 345 678.",
      not_digits: "Use digits only; you may put a space or dash between them, e.g. 0712 345 678.",
      too_short: "This number has too few digits, e.g. 0712 345 678.",
      too_long: "This number has too many digits, e.g. 0712 345 678.",
      not_kenyan: "Use a Kenyan number: start with 07, 01 or +254, e.g. 0712 345 678.",
      not_mobile: "Use a mobile number: it starts with 07 or 01, e.g. 0712 345 678.",
    },
    sw: {
      empty: "Weka nambari yako ya simu ya M-Pesa, mfano 0712 345 678.",
      not_digits: "Tumia tarakimu tu; unaweza kuweka nafasi au kistari kati yake, mfano 0712 345 678.",
      too_short: "Nambari hii ina tarakimu chache mno, mfano 0712 345 678.",
      too_long: "Nambari hii ina tarakimu nyingi mno, mfano 0712 345 678.",
      not_kenyan: "Tumia nambari ya Kenya: anza na 07, 01 au +254, mfano 0712 345 678.",
      not_mobile: "Tumia nambari ya simu ya mkononi: inaanza na 07 au 01, mfano 0712 345 678.",
    },
  };

  // phone.rs, step for step, so the browser refuses exactly what the server would.
  // Rust's str::trim strips Unicode White_Space, which is not what String#trim strips.
  const EDGE_SPACE = /^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
  const COUNTRY_CODE = '254';
  const mobile = (subscriber) => subscriber[0] === '7' || subscriber[0] === '1';

  const lengthThenSubscriber = (digits, expected, subscriber) => {
    if (digits.length < expected) return 'too_short';
    if (digits.length > expected) return 'too_long';
    return mobile(subscriber) ? null : 'not_mobile';
  };
  const afterCountryCode = (digits) => lengthThenSubscriber(digits, 12, digits.slice(COUNTRY_CODE.length));

  const phoneProblem = (input) => {
    const trimmed = input.replace(EDGE_SPACE, '');
    if (trimmed === '') return 'empty';
    const plus = trimmed[0] === '+';
    const rest = plus ? trimmed.slice(1) : trimmed;
    let digits = '';
    let previousWasDigit = false;
    for (const c of rest) {
      if (c >= '0' && c <= '9') {
        digits += c;
        previousWasDigit = true;
      } else if ((c === ' ' || c === '-') && previousWasDigit) {
        previousWasDigit = false;
      } else {
        return 'not_digits';
      }
    }
    if (digits === '') return 'too_short';
    if (!previousWasDigit) return 'not_digits';
    if (plus) {
      if (digits.startsWith(COUNTRY_CODE)) return afterCountryCode(digits);
      return COUNTRY_CODE.startsWith(digits) ? 'too_short' : 'not_kenyan';
    }
    if (digits[0] === '0') return lengthThenSubscriber(digits, 10, digits.slice(1));
    if (mobile(digits)) return lengthThenSubscriber(digits, 9, digits);
    if (digits.startsWith(COUNTRY_CODE)) return afterCountryCode(digits);
    if (COUNTRY_CODE.startsWith(digits)) return 'too_short';
    return digits.length >= 11 ? 'not_kenyan' : 'not_mobile';
  };

  const showCurrentState = () => {
    // A GET of the page, never a reload: a reload of a page that answered a POST posts again.
    location.replace(location.pathname + location.search);
  };

  const tellParent = () => {
    const origin = data.parentOrigin;
    if (!framed || !isHttp(origin)) return;
    try {
      window.parent.postMessage({
        type: 'mpesa-checkout',
        session: data.session,
        state: state,
        receipt: data.receipt || null,
        outcome: data.outcome || null,
        reason: data.reason || null,
      }, origin);
    } catch (e) {
      // A malformed origin: nobody to tell.
    }
  };

  const guardForm = (form) => {
    const input = document.getElementById('phone');
    const error = document.getElementById('phone-error');
    const submit = form.querySelector('button[type=submit]');
    let sent = false;
    form.addEventListener('submit', (event) => {
      const problem = phoneProblem(input.value);
      if (sent || problem) event.preventDefault();
      if (problem) {
        error.textContent = PROBLEMS[lang][problem];
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return;
      }
      if (sent) return;
      error.textContent = '';
      input.removeAttribute('aria-invalid');
      // One post per prompt: a second tap must not ask M-Pesa for a second one.
      sent = true;
      if (submit) submit.disabled = true;
    });
    // Back from the next page (bfcache): the form is usable again.
    window.addEventListener('pageshow', (event) => {
      if (!event.persisted) return;
      sent = false;
      if (submit) submit.disabled = false;
    });
  };

  const tickCountdown = (countdown) => {
    const deadline = Number(countdown.dataset.deadline) * 1000;
    const skew = Number(countdown.dataset.now) * 1000 - Date.now();
    const offset = Number.isFinite(skew) ? skew : 0;
    const pad = (n) => (n < 10 ? '0' : '') + n;
    const tick = () => {
      const left = Math.max(0, Math.round((deadline - Date.now() - offset) / 1000));
      countdown.textContent = pad(Math.floor(left / 60)) + ':' + pad(left % 60);
    };
    tick();
    setInterval(tick, 1000);
    // Past the deadline the server knows better than a silent poll: show its page.
    const grace = deadline - Date.now() - offset + 30000;
    if (Number.isFinite(grace)) setTimeout(showCurrentState, Math.max(grace, 5000));
  };

  const watch = () => {
    const base = data.statusUrl;
    const url = base + (base.indexOf('?') < 0 ? '?' : '&') + 'lang=' + lang;
    let finished = false;
    let socket = null;
    let timer = null;
    let inFlight = false;
    let delay = 1000;

    const answer = (status) => {
      if (finished || !status || typeof status.state !== 'string' || status.state === 'waiting') return;
      finished = true;
      clearTimeout(timer);
      if (socket) socket.close();
      if (status.state === 'paid' && typeof status.message === 'string') {
        document.getElementById('status').textContent = status.message;
        setTimeout(showCurrentState, 1500);
      } else {
        showCurrentState();
      }
    };

    // One status request; the next is scheduled only while no live channel is open.
    const ask = () => {
      if (finished || inFlight) return;
      inFlight = true;
      fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'omit' })
        .then((response) => {
          if (!response.ok) throw new Error('status ' + response.status);
          return response.json();
        })
        .then((status) => {
          delay = 1000;
          answer(status);
        })
        .catch(() => {
          delay = Math.min(delay * 2, 5000);
        })
        .then(() => {
          inFlight = false;
          if (!finished && !socket) timer = setTimeout(poll, delay);
        });
    };

    const poll = () => {
      clearTimeout(timer);
      if (!socket) ask();
    };

    const listen = (liveUrl) => {
      try {
        socket = new WebSocket(liveUrl + (liveUrl.indexOf('?') < 0 ? '?' : '&') + 'lang=' + lang);
      } catch (e) {
        socket = null;
        return;
      }
      // A channel may not send before it is open (API Gateway's cannot): ask once, so a change
      // between this page's render and the connection is not missed.
      socket.addEventListener('open', ask);
      socket.addEventListener('message', (event) => {
        try {
          answer(JSON.parse(event.data));
        } catch (e) {
          // Not our JSON: keep listening.
        }
      });
      const fallBack = () => {
        if (!socket) return;
        socket = null;
        poll();
      };
      socket.addEventListener('error', fallBack);
      socket.addEventListener('close', fallBack);
    };

    // A phone that went to the M-Pesa prompt may have paused our timers: ask at once on return.
    // Its socket may have died unnoticed meanwhile.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') ask();
    });

    if (data.liveUrl && window.WebSocket) listen(data.liveUrl);
    poll();
  };

  const form = document.getElementById('pay-form');
  if (form) guardForm(form);

  const countdown = document.getElementById('countdown');
  if (countdown) tickCountdown(countdown);
  if (state === 'waiting' && data.statusUrl) watch();

  if (state === 'paid' || state === 'closed') tellParent();
  if (state === 'paid' && !(framed && data.parentOrigin)) {
    // In the shop's modal the shop closes it on our message; on our own it is our move.
    const link = document.getElementById('redirect');
    const target = link && link.dataset.redirect;
    if (isHttp(target)) {
      const note = document.getElementById('redirect-note');
      if (note) note.hidden = false;
      setTimeout(() => {
        location.href = target;
      }, 3000);
    }
  }
})();
