// The SIP side of the web phone: one JsSIP user agent over the server's WebSocket (/sip).
// Knows nothing of the page: it reports what happens as events ("state", "incoming", "call")
// and offers the actions a phone has (call, answer, decline, hang up, hold, mute, DTMF).
import JsSIP from 'jssip';

export const STATES = {
  connecting: 'connecting',
  registered: 'registered',
  lost: 'lost', // the socket closed: JsSIP reconnects with back-off (2 s doubling up to 30 s)
  failed: 'failed', // the server refused the registration
  busy: 'busy', // the server answered 5xx (e.g. 503 overloaded): registering again after its Retry-After
  stopped: 'stopped',
};

export class MicrophoneError extends Error {}

/** Ask for the microphone first, so a refusal gets a clear message instead of a failed call. */
export async function getMicrophone() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new MicrophoneError('This browser gives no access to a microphone (the page must be opened over https or on localhost).');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
  } catch (err) {
    if (err && (err.name === 'NotAllowedError' || err.name === 'SecurityError')) {
      throw new MicrophoneError('Microphone access was refused. Allow the microphone for this site in the browser, then try again.');
    }
    if (err && err.name === 'NotFoundError') {
      throw new MicrophoneError('No microphone was found. Connect one and try again.');
    }
    throw new MicrophoneError(`The microphone could not be opened (${err && err.name ? err.name : err}).`);
  }
}

function partyOf(identity) {
  const uri = identity && identity.uri;
  return { name: (identity && identity.display_name) || '', number: (uri && uri.user) || '' };
}

export class Phone extends EventTarget {
  /**
   * @param {{wsUrl:string, number:string, domain:string, authUser:string, password:string,
   *          displayName?:string, audio?:HTMLAudioElement}} cfg
   */
  constructor(cfg) {
    super();
    this.cfg = cfg;
    this.ua = null;
    this.session = null;
    this.state = STATES.stopped;
    this.attempts = 0; // reconnection attempts since the last success
    this.held = false;
    this.muted = false;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state, detail = {}) {
    this.state = state;
    this._emit('state', { state, attempts: this.attempts, ...detail });
  }

  start() {
    const c = this.cfg;
    const socket = new JsSIP.WebSocketInterface(c.wsUrl);
    this.ua = new JsSIP.UA({
      sockets: [socket],
      uri: `sip:${c.number}@${c.domain}`,
      authorization_user: c.authUser,
      password: c.password,
      display_name: c.displayName || undefined,
      register: true,
      register_expires: 300,
      session_timers: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
      user_agent: 'OneNumber web phone (JsSIP)',
    });
    const ua = this.ua;
    ua.on('connecting', () => {
      if (this.state !== STATES.lost) this._setState(STATES.connecting);
    });
    ua.on('connected', () => {
      this.attempts = 0;
      this._setState(STATES.connecting, { connected: true });
    });
    ua.on('disconnected', () => {
      if (this.state === STATES.stopped) return;
      this.attempts += 1;
      this._setState(STATES.lost);
    });
    ua.on('registered', () => {
      this.attempts = 0;
      this._setState(STATES.registered);
    });
    ua.on('unregistered', () => {
      if (this.state === STATES.registered) this._setState(STATES.connecting);
    });
    ua.on('registrationFailed', (e) => {
      const reason = (e.response && `${e.response.status_code} ${e.response.reason_phrase}`) || e.cause;
      const status = e.response ? e.response.status_code : 0;
      if (status >= 500 && status < 600 && this.state !== STATES.stopped) {
        // a busy server is not a refusal: try again when it says (bounded), like a deskphone would
        const after = Number.parseInt(e.response.getHeader('Retry-After') || '', 10);
        const wait = Math.min(Math.max(Number.isFinite(after) ? after : 5, 1), 60);
        this._setState(STATES.busy, { reason, retry: wait });
        clearTimeout(this._retry);
        this._retry = setTimeout(() => { if (this.ua && this.state === STATES.busy) this.ua.register(); }, wait * 1000);
        return;
      }
      this._setState(STATES.failed, { reason });
    });
    ua.on('newRTCSession', (e) => this._onSession(e));
    ua.start();
  }

  stop() {
    clearTimeout(this._retry);
    this._setState(STATES.stopped);
    if (this.session) {
      try { this.session.terminate(); } catch (_) { /* already over */ }
    }
    if (this.ua) this.ua.stop();
    this.ua = null;
  }

  _onSession(e) {
    const session = e.session;
    if (this.session && !this.session.isEnded()) {
      if (e.originator === 'remote') session.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
      return;
    }
    this.session = session;
    this.held = false;
    this.muted = false;
    const party = partyOf(session.remote_identity);
    session.on('peerconnection', (pe) => this._attachAudio(pe.peerconnection));
    if (session.connection) this._attachAudio(session.connection);
    session.on('progress', () => this._emit('call', { phase: 'progress', party }));
    session.on('accepted', () => this._emit('call', { phase: 'accepted', party }));
    session.on('confirmed', () => this._emit('call', { phase: 'confirmed', party }));
    session.on('hold', () => { this.held = true; this._emit('call', { phase: 'hold', party }); });
    session.on('unhold', () => { this.held = false; this._emit('call', { phase: 'unhold', party }); });
    session.on('muted', () => { this.muted = true; this._emit('call', { phase: 'muted', party }); });
    session.on('unmuted', () => { this.muted = false; this._emit('call', { phase: 'unmuted', party }); });
    const over = (phase) => (ev) => {
      if (this.session === session) this.session = null;
      this._emit('call', { phase, party, cause: ev.cause, originator: ev.originator });
    };
    session.on('ended', over('ended'));
    session.on('failed', over('failed'));
    if (e.originator === 'remote') {
      this._emit('incoming', party);
    } else {
      this._emit('call', { phase: 'calling', party });
    }
  }

  _attachAudio(pc) {
    const audio = this.cfg.audio;
    if (!audio || !pc) return;
    pc.addEventListener('track', (ev) => {
      if (ev.streams && ev.streams[0]) audio.srcObject = ev.streams[0];
    });
  }

  async call(number) {
    if (!this.ua) throw new Error('not connected');
    const stream = await getMicrophone();
    this.ua.call(`sip:${number}@${this.cfg.domain}`, {
      mediaStream: stream,
      pcConfig: { iceServers: [] },
    });
  }

  async answer() {
    if (!this.session) return;
    const stream = await getMicrophone();
    this.session.answer({ mediaStream: stream, pcConfig: { iceServers: [] } });
  }

  decline() {
    if (this.session) this.session.terminate({ status_code: 603, reason_phrase: 'Decline' });
  }

  hangup() {
    if (this.session) this.session.terminate();
  }

  toggleHold() {
    if (!this.session) return;
    if (this.session.isOnHold().local) this.session.unhold(); else this.session.hold();
  }

  toggleMute() {
    if (!this.session) return;
    if (this.session.isMuted().audio) this.session.unmute({ audio: true }); else this.session.mute({ audio: true });
  }

  dtmf(tone) {
    if (this.session && this.session.isEstablished()) this.session.sendDTMF(tone);
  }
}
