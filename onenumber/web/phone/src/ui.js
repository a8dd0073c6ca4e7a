// What the page shows: small functions over the DOM of index.html. No network, no SIP here.

export const $ = (id) => document.getElementById(id);

const STATE_TEXT = {
  offline: 'Signed out',
  connecting: 'Connecting…',
  registered: 'Registered',
  lost: 'Connection lost — retrying',
  failed: 'Registration refused',
  busy: 'Server busy — retrying',
  stopped: 'Signed out',
};

export function showRegState(state, detail = {}) {
  const el = $('reg-state');
  let text = STATE_TEXT[state] || state;
  if (state === 'lost' && detail.attempts > 1) text += ` (attempt ${detail.attempts})`;
  if (state === 'failed' && detail.reason) text += ` (${detail.reason})`;
  if (state === 'busy' && detail.retry) text += ` in ${detail.retry} s`;
  el.textContent = text;
  el.dataset.state = state;
}

export function showError(message) {
  const el = $('error');
  el.textContent = message || '';
  el.hidden = !message;
}

export function showLoginError(message) {
  const el = $('login-error');
  el.textContent = message || '';
  el.hidden = !message;
}

export function showScreen(name) {
  $('login').hidden = name !== 'login';
  $('phone').hidden = name !== 'phone';
  // the first field gets focus unless the user is already typing in the form (the session check
  // at boot answers after the page is usable: taking focus then would move their keystrokes)
  if (name === 'login' && !$('login').contains(document.activeElement)) $('login-username').focus();
}

export function showMe(me) {
  $('me-name').textContent = me.name || '';
  $('me-number').textContent = me.number || '';
}

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];

/** Fill a pad container with 12 buttons; `onKey(key)` is called for each press. */
export function buildPad(container, onKey) {
  container.replaceChildren();
  for (const key of KEYS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = key;
    b.dataset.key = key;
    b.setAttribute('aria-label', key === '*' ? 'star' : key === '#' ? 'hash' : key);
    b.addEventListener('click', () => onKey(key));
    container.append(b);
  }
}

export function deviceLabel(d) {
  if (d.kind === 'webphone') return 'Web phone (this browser)';
  const kind = d.kind ? d.kind.charAt(0).toUpperCase() + d.kind.slice(1) : 'Device';
  const name = d.label ? `${d.label} (${kind.toLowerCase()})` : `${kind} ${d.position + 1}`;
  return d.registered === false ? `${name} — not registered` : name;
}

export function showDevices(me) {
  const sel = $('device-select');
  sel.replaceChildren();
  for (const d of me.devices || []) {
    const o = document.createElement('option');
    o.value = String(d.position);
    o.textContent = deviceLabel(d);
    sel.append(o);
  }
  if (me.selected_device != null) sel.value = String(me.selected_device);
  $('device-note').textContent = me.ring_mode === 'exclusive' ? '' : `(now: ${me.ring_mode || 'all devices'})`;
}

function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m % 60).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function startTimer(el, since = Date.now()) {
  el.textContent = '0:00';
  const id = setInterval(() => { el.textContent = fmtDuration((Date.now() - since) / 1000); }, 500);
  return () => clearInterval(id);
}

export function showIncoming(party) {
  $('incoming-name').textContent = party.name || party.number || 'Unknown caller';
  $('incoming-number').textContent = party.name ? party.number : '';
  $('incoming').hidden = false;
  $('answer').focus();
}

export function hideIncoming() {
  $('incoming').hidden = true;
}

export function showInCall(party, status) {
  $('call-name').textContent = party.name || party.number || '';
  $('call-number').textContent = party.name ? party.number : '';
  $('call-status').textContent = status;
  $('incall').hidden = false;
  $('dialer').hidden = true;
}

export function setCallStatus(status) {
  $('call-status').textContent = status;
}

export function hideInCall() {
  $('incall').hidden = true;
  $('dialer').hidden = false;
  $('dtmf').hidden = true;
  $('keypad-toggle').setAttribute('aria-expanded', 'false');
  setPressed('hold', false, 'Hold', 'Resume');
  setPressed('mute', false, 'Mute', 'Unmute');
}

export function setPressed(id, on, offText, onText) {
  const b = $(id);
  b.setAttribute('aria-pressed', on ? 'true' : 'false');
  b.textContent = on ? onText : offText;
}

const OUTCOME_TEXT = {
  answered: 'answered', missed: 'missed', busy: 'busy', failed: 'failed', cancelled: 'cancelled',
  'answered elsewhere': 'answered elsewhere', forwarded: 'forwarded', voicemail: 'voicemail',
};

export function showHistory(rows, onPick) {
  const list = $('history');
  list.replaceChildren();
  if (!rows || rows.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No calls yet.';
    list.append(li);
    return;
  }
  for (const r of rows) {
    const li = document.createElement('li');
    const who = document.createElement('button');
    who.type = 'button';
    const arrow = r.direction === 'outgoing' ? '↗' : '↙';
    who.textContent = `${arrow} ${r.other_name || r.other_number}${r.other_name ? ` (${r.other_number})` : ''}`;
    who.setAttribute('aria-label', `Call ${r.other_name || ''} ${r.other_number}`.trim());
    who.addEventListener('click', () => onPick(r.other_number));
    const info = document.createElement('span');
    const when = r.started_at ? new Date(r.started_at).toLocaleString() : '';
    const outcome = OUTCOME_TEXT[r.outcome] || r.outcome || '';
    const what = r.answered_at ? fmtDuration(r.duration) : outcome;
    const where = r.answered_at && r.device ? ` · ${r.device}` : '';
    info.textContent = `${when} · ${what}${r.outcome === 'answered' || !r.answered_at ? '' : ` (${outcome})`}${where}`;
    info.className = r.outcome === 'missed' ? 'missed' : 'muted';
    li.append(who, info);
    list.append(li);
  }
}

const PRESENCE_TEXT = { available: 'available', ringing: 'ringing', 'in-use': 'in a call', offline: 'offline' };

/** Colleagues and their presence: `people` maps number -> {account, name, state}. */
export function showColleagues(people, onPick) {
  const list = $('colleagues');
  list.replaceChildren();
  const rows = Object.values(people).sort((a, b) => a.account.localeCompare(b.account));
  if (rows.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No colleagues to show.';
    list.append(li);
    return;
  }
  for (const p of rows) {
    const li = document.createElement('li');
    li.dataset.account = p.account;
    const who = document.createElement('button');
    who.type = 'button';
    who.textContent = `${p.name || p.account} (${p.account})`;
    who.setAttribute('aria-label', `Call ${p.name || ''} ${p.account}, ${PRESENCE_TEXT[p.state] || p.state}`.trim());
    who.addEventListener('click', () => onPick(p.account));
    const state = document.createElement('span');
    state.className = 'state';
    state.dataset.state = p.state;
    state.textContent = PRESENCE_TEXT[p.state] || p.state;
    li.append(who, state);
    list.append(li);
  }
}

export function showVoicemail(box, onPlay) {
  const list = $('voicemail');
  list.replaceChildren();
  $('vm-counts').textContent = box ? `(${box.new} new, ${box.saved} saved)` : '';
  const messages = (box && box.messages) || [];
  if (messages.length === 0) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = box ? 'No messages.' : 'Voicemail is not available.';
    list.append(li);
    return;
  }
  for (const m of messages) {
    const li = document.createElement('li');
    li.dataset.id = m.id;
    if (!m.heard) li.className = 'new';
    const play = document.createElement('button');
    play.type = 'button';
    const who = m.caller_name ? `${m.caller_name} (${m.caller})` : (m.caller || 'Unknown caller');
    play.textContent = `▶ ${who}`;
    play.setAttribute('aria-label', `Play the message from ${who}${m.heard ? '' : ', new'}`);
    play.addEventListener('click', () => onPlay(m));
    const info = document.createElement('span');
    info.className = 'muted';
    const when = m.received_at ? new Date(m.received_at * 1000).toLocaleString() : '';
    info.textContent = `${when} · ${fmtDuration(m.duration)}${m.heard ? '' : ' · new'}`;
    li.append(play, info);
    list.append(li);
  }
}
