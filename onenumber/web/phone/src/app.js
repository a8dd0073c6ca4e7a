// The web phone page: login, then the phone. Talks to the server's JSON API (session cookie +
// CSRF header on every state-changing request) and hands SIP to sip.js; the DOM is ui.js's.
import { Phone, MicrophoneError } from './sip.js';
import * as ui from './ui.js';

const { $ } = ui;

let csrf = null;
let phone = null;
let stopTimer = null;
let me = null;
let refresher = null; // the history refresh timer
let presence = null; // the EventSource of /api/presence/stream
const people = {}; // colleague number -> {account, name, state}
const presenceLog = []; // every presence event seen (diagnostics and tests)

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function readCookie(name) {
  const m = document.cookie.match(new RegExp(`(?:^|; )${name}=([^;]*)`));
  return m ? decodeURIComponent(m[1]) : null;
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') {
    const token = csrf || readCookie('onenumber_csrf');
    if (token) headers['X-CSRF-Token'] = token;
  }
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (_) {
    throw new ApiError(0, { message: 'Server unreachable. Check your network connection; the page will keep trying.' });
  }
  if (resp.status === 204) return null;
  let data = null;
  try { data = await resp.json(); } catch (_) { data = null; }
  if (resp.status === 401 && path !== '/api/login' && me) sessionEnded(); // expired, or ended elsewhere
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

// ------------------------------------------------------------------ login

async function onLogin(ev) {
  ev.preventDefault();
  ui.showLoginError('');
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  $('login-submit').disabled = true;
  try {
    const res = await api('POST', '/api/login', { username, password });
    csrf = res.csrf || readCookie('onenumber_csrf');
    $('login-password').value = '';
    await enterPhone();
  } catch (err) {
    if (err.status === 401) ui.showLoginError('Wrong number or password.');
    else if (err.status === 429) ui.showLoginError('Too many failed attempts. Wait a minute, then try again.');
    else if (err.status === 0) ui.showLoginError(err.message);
    else ui.showLoginError(`Sign-in failed: ${err.message}`);
  } finally {
    $('login-submit').disabled = false;
  }
}

/** The server no longer knows this session (expired, password changed, logged out elsewhere). */
function sessionEnded() {
  if (phone) { phone.stop(); phone = null; }
  stopPresence();
  if (refresher) { clearInterval(refresher); refresher = null; }
  me = null;
  csrf = null;
  endCallUi();
  ui.showRegState('offline');
  ui.showScreen('login');
  ui.showLoginError('Your session has ended. Sign in again.');
}

async function onLogout() {
  if (refresher) { clearInterval(refresher); refresher = null; }
  if (phone) { phone.stop(); phone = null; }
  stopPresence();
  me = null; // signing out: a 401 here is no "session ended"
  try { await api('POST', '/api/logout'); } catch (_) { /* signed out here anyway */ }
  csrf = null;
  endCallUi();
  ui.showRegState('offline');
  ui.showScreen('login');
}

// ------------------------------------------------------------------ the phone

async function enterPhone() {
  // the credential first: on the first login it creates (and selects) the web phone device
  const cred = await api('GET', '/api/me/webphone');
  me = await api('GET', '/api/me');
  ui.showMe({ name: me.name, number: me.number });
  ui.showDevices(me);
  ui.showScreen('phone');
  ui.showError('');
  startPhone(cred);
  refreshHistory();
  startPresence();
  refreshVoicemail();
  // calls taken elsewhere show up, and an ended session is noticed, without a reload
  if (refresher) clearInterval(refresher);
  refresher = setInterval(refreshHistory, 60000);
}

// ------------------------------------------------------------------ presence and voicemail

function pick(number) { $('number').value = number; $('number').focus(); }

/** Colleagues' presence, pushed by the server (server-sent events; the browser reconnects by itself). */
function startPresence() {
  stopPresence();
  if (typeof EventSource === 'undefined') return;
  presence = new EventSource('/api/presence/stream');
  const note = $('colleagues-note');
  presence.addEventListener('snapshot', (ev) => {
    for (const k of Object.keys(people)) delete people[k];
    for (const p of JSON.parse(ev.data)) people[p.account] = p;
    note.hidden = true;
    ui.showColleagues(people, pick);
  });
  presence.addEventListener('presence', (ev) => {
    const p = JSON.parse(ev.data);
    presenceLog.push(p);
    people[p.account] = p;
    ui.showColleagues(people, pick);
  });
  presence.addEventListener('mwi', () => { refreshVoicemail(); setTimeout(refreshHistory, 1500); });
  presence.addEventListener('error', () => {
    note.textContent = 'Presence is not available right now; retrying…';
    note.hidden = false;
  });
}

function stopPresence() {
  if (presence) { presence.close(); presence = null; }
}

async function refreshVoicemail() {
  try {
    ui.showVoicemail(await api('GET', '/api/me/voicemail'), playVoicemail);
  } catch (_) {
    ui.showVoicemail(null, () => {});
  }
}

let playing = null; // the object URL of the message in the player

async function playVoicemail(m) {
  const player = $('vm-player');
  // fetched by the page (session cookie; a clear error when it fails), then played from memory
  let blob;
  try {
    const resp = await fetch(m.audio, { credentials: 'same-origin' });
    if (!resp.ok) throw new Error(resp.status === 404 ? 'the recording is missing' : `HTTP ${resp.status}`);
    const type = resp.headers.get('content-type') || '';
    if (!type.startsWith('audio/')) throw new Error(`the server sent ${type || 'no type'}, not a recording`);
    blob = await resp.blob();
  } catch (err) {
    ui.showError(`The message could not be loaded (${err.message || err}).`);
    return;
  }
  if (playing) URL.revokeObjectURL(playing);
  playing = URL.createObjectURL(blob);
  player.hidden = false;
  player.dataset.message = m.id;
  player.dataset.url = m.audio;
  player.src = playing;
  // not awaited: play() settles only when sound starts, and the message is heard once opened
  player.play().catch((err) => {
    if (err && err.name !== 'AbortError') ui.showError(`The message could not be played (${err.name || err}).`);
  });
  if (!m.heard) {
    try { await api('POST', `/api/me/voicemail/${encodeURIComponent(m.id)}/heard`); } catch (_) { /* stays new */ }
    refreshVoicemail();
  }
}

/** Start the SIP user agent with a web phone credential ({auth_username, password, domain, ws_path, ...}). */
export function startPhone(cred) {
  if (phone) phone.stop();
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  phone = new Phone({
    wsUrl: `${scheme}://${location.host}${cred.ws_path || '/sip'}`,
    number: cred.number,
    domain: cred.domain,
    authUser: cred.auth_username,
    password: cred.password,
    displayName: cred.display_name,
    audio: $('remote-audio'),
  });
  phone.addEventListener('state', (e) => {
    ui.showRegState(e.detail.state, e.detail);
    if (e.detail.state === 'registered') ui.showError('');
    if (e.detail.state === 'lost') ui.showError('Connection to the server lost — retrying…');
  });
  phone.addEventListener('incoming', (e) => {
    ui.showIncoming(e.detail);
  });
  phone.addEventListener('call', (e) => onCallEvent(e.detail));
  phone.start();
  return phone;
}

function onCallEvent({ phase, party, cause, originator }) {
  switch (phase) {
    case 'calling':
      ui.showInCall(party, 'Calling…');
      break;
    case 'progress':
      if (!$('incall').hidden) ui.setCallStatus('Ringing…');
      break;
    case 'accepted':
    case 'confirmed':
      ui.hideIncoming();
      ui.showInCall(party, 'In call');
      if (!stopTimer) stopTimer = ui.startTimer($('call-timer'));
      break;
    case 'hold':
      ui.setPressed('hold', true, 'Hold', 'Resume');
      ui.setCallStatus('On hold');
      break;
    case 'unhold':
      ui.setPressed('hold', false, 'Hold', 'Resume');
      ui.setCallStatus('In call');
      break;
    case 'muted':
      ui.setPressed('mute', true, 'Mute', 'Unmute');
      break;
    case 'unmuted':
      ui.setPressed('mute', false, 'Mute', 'Unmute');
      break;
    case 'ended':
    case 'failed':
      endCallUi();
      if (phase === 'failed' && originator !== 'local' && cause && cause !== 'Canceled') {
        ui.showError(`Call failed: ${cause}`);
      }
      refreshHistory();
      setTimeout(refreshHistory, 2000); // the server writes history rows in one-second batches
      break;
    default:
      break;
  }
}

function endCallUi() {
  if (stopTimer) { stopTimer(); stopTimer = null; }
  ui.hideIncoming();
  ui.hideInCall();
}

async function withMicrophone(action) {
  try {
    ui.showError('');
    await action();
  } catch (err) {
    ui.showError(err instanceof MicrophoneError ? err.message : `Call failed: ${err.message || err}`);
  }
}

async function refreshHistory() {
  try {
    const rows = await api('GET', '/api/me/history');
    ui.showHistory(Array.isArray(rows) ? rows : rows && rows.items, (n) => { $('number').value = n; $('number').focus(); });
  } catch (_) {
    ui.showHistory([], () => {});
  }
}

async function onDeviceChange() {
  const sel = $('device-select');
  const position = Number(sel.value);
  $('device-note').textContent = 'Saving…';
  try {
    const account = await api('PUT', '/api/me/selected-device', { position });
    if (account) me = { ...me, ...account };
    $('device-note').textContent = 'Saved';
  } catch (err) {
    $('device-note').textContent = '';
    ui.showError(`Could not change the device: ${err.message}`);
    if (me && me.selected_device != null) sel.value = String(me.selected_device);
  }
}

// ------------------------------------------------------------------ wiring

function wire() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('device-select').addEventListener('change', onDeviceChange);
  ui.buildPad($('pad'), (k) => { $('number').value += k; $('number').focus(); });
  ui.buildPad($('dtmf'), (k) => phone && phone.dtmf(k));
  $('dial-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const n = $('number').value.replace(/[^0-9*#+]/g, '');
    if (!n || !phone) return;
    withMicrophone(() => phone.call(n));
  });
  $('answer').addEventListener('click', () => withMicrophone(() => phone.answer()));
  $('decline').addEventListener('click', () => { if (phone) phone.decline(); endCallUi(); });
  $('hangup').addEventListener('click', () => phone && phone.hangup());
  $('hold').addEventListener('click', () => phone && phone.toggleHold());
  $('mute').addEventListener('click', () => phone && phone.toggleMute());
  $('keypad-toggle').addEventListener('click', () => {
    const pad = $('dtmf');
    pad.hidden = !pad.hidden;
    $('keypad-toggle').setAttribute('aria-expanded', String(!pad.hidden));
  });
  // keyboard: digits send tones during a call; Escape hangs up or declines
  document.addEventListener('keydown', (ev) => {
    if (!phone || !phone.session) return;
    if (ev.key === 'Escape') {
      if (!$('incoming').hidden) { phone.decline(); endCallUi(); } else phone.hangup();
    } else if (/^[0-9*#]$/.test(ev.key) && !$('incall').hidden && document.activeElement?.tagName !== 'INPUT') {
      phone.dtmf(ev.key);
    }
  });
  window.addEventListener('beforeunload', () => { if (phone) phone.stop(); });
}

async function boot() {
  wire();
  // for diagnostics and tests
  window.OneNumberPhone = { startPhone, presenceLog, get phone() { return phone; } };
  try {
    await enterPhone(); // a session cookie from earlier: straight to the phone
  } catch (err) {
    ui.showScreen('login');
    if (err.status === 0) ui.showLoginError(err.message);
  }
  document.body.dataset.booted = '1'; // for tests: the session check has answered
}

boot();
