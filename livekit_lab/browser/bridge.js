// livekit_lab browser media bridge: the anywidget front end of livekit_lab.browser.MediaBridge.
//
// mic ─ MediaStreamSource ─ lowpass 7 kHz ×2 ─ worklet "pcm-capture" (16 kHz Int16, chunk_ms)
//     └─ model.send({type:'audio', seq, t}, undefined, [ArrayBuffer])              ─► kernel
// camera ─ <video> ─ canvas (≤ max_width) ─ JPEG every frame_ms (≥ 1000 ms)
//     └─ model.send({type:'frame', seq, t, w, h}, undefined, [ArrayBuffer])         ─► kernel
// kernel ─ {type:'play'} + PCM16 24 kHz buffer ─► worklet "pcm-player" in a 24 kHz AudioContext
//          {type:'end'} / {type:'clear'} (barge-in)
// Browser-direct mode ({type:'direct', url, setup}): the page opens the Live WebSocket itself
// with an ephemeral token and the kernel only receives telemetry.
//
// One capture per model: the state lives in a module-level map keyed by the model's `_uid`
// trait, so a second view of the same widget shows the same state instead of capturing again;
// across windows the kernel arbitrates with a claim message. The view that started capture
// owns it: its cleanup stops the tracks and closes both AudioContexts.

const STATES = new Map();
const now = () => performance.timeOrigin + performance.now();
const VOICE_DBFS = -45; // chunk level above which the mic counts as "voiced" (direct-mode TTFA)

function summary(values) {
  if (!values.length) return { n: 0, p50: null, p95: null, max: null };
  const a = [...values].sort((x, y) => x - y);
  const q = (p) => a[Math.min(a.length - 1, Math.floor(p * (a.length - 1) + 0.5))];
  return { n: a.length, p50: q(0.5), p95: q(0.95), max: a[a.length - 1] };
}

function pushCapped(arr, v, cap = 2000) {
  arr.push(v);
  if (arr.length > cap) arr.splice(0, arr.length - cap);
}

function fresh(arr, k) {
  // the last k values pushed (k may exceed what the capped array still holds)
  return k > 0 ? arr.slice(Math.max(0, arr.length - k)) : [];
}

function b64encode(buf) {
  const u = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
  return btoa(s);
}

function b64decode(str) {
  const s = atob(str);
  const u = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) u[i] = s.charCodeAt(i);
  return u.buffer;
}

function blobURL(src) {
  return URL.createObjectURL(new Blob([src], { type: 'text/javascript' }));
}

function fmtMs(v) {
  return v == null ? '–' : `${Math.round(v)} ms`;
}

// ---------------------------------------------------------------- per-model state

function stateFor(model) {
  const uid = model.get('_uid');
  let S = STATES.get(uid);
  if (!S) {
    S = newState(model, uid);
    STATES.set(uid, S);
  }
  S.model = model;
  return S;
}

function newState(model, uid) {
  return {
    uid,
    model,
    id: `${uid}:${Math.random().toString(36).slice(2, 10)}`, // this page's claim id
    phase: 'idle', // idle | starting | running | stopping
    owner: null, // view id that started capture
    viewSeq: 0,
    views: new Set(),
    error: '',
    timers: [],
    capCtx: null,
    playCtx: null,
    stream: null,
    nodes: [],
    capNode: null,
    player: null,
    analyser: null,
    video: null,
    canvas: null,
    frameBusy: false,
    frameTimer: null,
    aseq: 0,
    runStart: 0,
    fseq: 0,
    chunks: 0,
    bytes: 0,
    frames: 0,
    frameBytes: 0,
    lastChunkT: 0,
    level: -120,
    lastVoiceT: null,
    playSeq: 0,
    playMsgs: 0,
    playDropped: 0,
    playLat: [],
    playLatN: 0,
    playLatSent: 0,
    rtt: [],
    rttN: 0,
    rttSent: 0,
    lastPong: 0,
    pstats: { played: 0, starved: 0, underruns: 0, queued: 0, clears: 0, cleared: 0, speaking: false, sumsq: 0 },
    peakHz: null,
    lastPeakHz: null,
    claim: null,
    pendingDirect: null,
    direct: null,
  };
}

function notify(S) {
  for (const v of S.views) v.update();
}

function send(S, content, buffers) {
  try {
    S.model.send(content, undefined, buffers);
  } catch (e) {
    // the comm is gone (kernel restarted); the next stats tick will show it
  }
}

function fail(S, where, e) {
  const msg = `${where}: ${e && e.message ? e.message : e}`;
  S.error = msg;
  send(S, { type: 'error', where, message: msg, t: now() });
  notify(S);
}

// ---------------------------------------------------------------- start / stop

function claim(S) {
  // Ask the kernel whether this page may own capture (another window may hold it).
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      S.claim = null;
      resolve({ ok: true, note: 'kernel did not answer the claim' });
    }, 4000);
    S.claim = (m) => {
      clearTimeout(timer);
      S.claim = null;
      resolve(m);
    };
    send(S, { type: 'claim', id: S.id, t: now() });
  });
}

function start(S, view) {
  if (S.phase !== 'idle') return; // one capture per model on this page
  S.phase = 'starting';
  S.owner = view.id;
  S.error = '';
  try {
    // Inside the click handler: user activation lets both contexts start 'running'.
    S.capCtx = new AudioContext({ latencyHint: 'interactive' });
    S.playCtx = new AudioContext({ sampleRate: 24000, latencyHint: 'interactive' });
  } catch (e) {
    teardown(S);
    fail(S, 'AudioContext', e);
    return;
  }
  notify(S);
  setup(S, view).catch((e) => {
    teardown(S);
    fail(S, 'start', e);
  });
}

async function setup(S, view) {
  const m = S.model;
  const c = await claim(S);
  if (!c.ok) throw new Error(c.reason || 'capture is running in another window');
  if (S.phase !== 'starting') return;
  const src = m.get('_worklets') || {};
  await Promise.all([
    S.capCtx.audioWorklet.addModule(blobURL(src.capture)),
    S.playCtx.audioWorklet.addModule(blobURL(src.player)),
  ]);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    throw new Error('no navigator.mediaDevices: the page must be served over https or from localhost');
  }
  const aec = !!m.get('aec');
  const camera = !!m.get('camera');
  S.stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: aec, noiseSuppression: aec, autoGainControl: aec },
    video: camera ? { width: { ideal: 640 }, height: { ideal: 480 } } : false,
  });
  if (S.phase !== 'starting') {
    S.stream.getTracks().forEach((t) => t.stop());
    return;
  }

  // capture graph
  const cap = S.capCtx;
  let node = cap.createMediaStreamSource(S.stream);
  S.nodes.push(node);
  if (cap.sampleRate > 16000) {
    for (let i = 0; i < 2; i++) {
      const lp = cap.createBiquadFilter();
      lp.type = 'lowpass';
      lp.frequency.value = 7000;
      lp.Q.value = 0.707;
      node.connect(lp);
      node = lp;
      S.nodes.push(lp);
    }
  }
  const chunkSamples = Math.max(160, Math.round((16000 * m.get('chunk_ms')) / 1000));
  S.capNode = new AudioWorkletNode(cap, 'pcm-capture', {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: { targetRate: 16000, chunkSamples },
  });
  node.connect(S.capNode);
  const mute = cap.createGain();
  mute.gain.value = 0;
  S.capNode.connect(mute).connect(cap.destination); // keeps the graph pulling the worklet
  S.nodes.push(mute);
  S.runStart = S.aseq; // sequence numbers of this capture run start here
  S.capNode.port.onmessage = (e) => onChunk(S, e.data);

  // playback graph
  const play = S.playCtx;
  S.player = new AudioWorkletNode(play, 'pcm-player', {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: { prebufferSamples: Math.round((24 * m.get('prebuffer_ms'))) },
  });
  S.analyser = play.createAnalyser();
  S.analyser.fftSize = 8192;
  S.player.connect(S.analyser);
  S.analyser.connect(play.destination);
  S.player.port.onmessage = (e) => onPlayer(S, e.data);

  // camera
  if (camera && S.stream.getVideoTracks().length) {
    S.video = document.createElement('video');
    S.video.muted = true;
    S.video.playsInline = true;
    S.video.autoplay = true;
    S.video.className = 'lkl-preview';
    S.video.srcObject = S.stream;
    await S.video.play().catch(() => {});
    S.canvas = document.createElement('canvas');
    resetFrameTimer(S);
  }

  S.timers.push(setInterval(() => send(S, { type: 'ping', t: now() }), 1000));
  S.timers.push(setInterval(() => sendStats(S), 500));
  S.phase = 'running';
  send(S, {
    type: 'state',
    capturing: true,
    id: S.id,
    t: now(),
    capture_rate: cap.sampleRate,
    playback_rate: play.sampleRate,
    capture_state: cap.state,
    playback_state: play.state,
    camera: !!S.video,
    chunk_samples: chunkSamples,
  });
  if (S.pendingDirect) {
    const d = S.pendingDirect;
    S.pendingDirect = null;
    openDirect(S, d);
  }
  notify(S);
}

function resetFrameTimer(S) {
  if (S.frameTimer) clearInterval(S.frameTimer);
  S.frameTimer = null;
  if (!S.video) return;
  const period = Math.max(1000, Number(S.model.get('frame_ms')) || 1000); // Live API: ≤ 1 FPS
  S.frameTimer = setInterval(() => grabFrame(S), period);
}

function teardown(S) {
  for (const t of S.timers) clearInterval(t);
  S.timers = [];
  if (S.frameTimer) clearInterval(S.frameTimer);
  S.frameTimer = null;
  closeDirect(S, 'capture stopped');
  if (S.capNode) {
    try {
      S.capNode.port.postMessage({ cmd: 'stop' });
      S.capNode.port.onmessage = null;
    } catch (e) {}
  }
  if (S.player) S.player.port.onmessage = null;
  for (const n of S.nodes) {
    try {
      n.disconnect();
    } catch (e) {}
  }
  S.nodes = [];
  let tracks = 0;
  let contexts = 0;
  if (S.stream) S.stream.getTracks().forEach((t) => { t.stop(); tracks++; });
  if (S.video) {
    S.video.srcObject = null;
    S.video.remove();
  }
  for (const ctx of [S.capCtx, S.playCtx]) {
    if (ctx && ctx.state !== 'closed') {
      ctx.close().catch(() => {});
      contexts++;
    }
  }
  Object.assign(S, {
    stream: null, capCtx: null, playCtx: null, capNode: null, player: null, analyser: null,
    video: null, canvas: null, frameBusy: false, owner: null, phase: 'idle', claim: null,
  });
  S.pstats = { ...S.pstats, queued: 0, speaking: false };
  return { tracks, contexts };
}

function stop(S, why) {
  if (S.phase === 'idle') return;
  const wasRunning = S.phase === 'running';
  sendStats(S);
  const freed = teardown(S);
  if (wasRunning) {
    send(S, { type: 'state', capturing: false, id: S.id, why, t: now(),
              stopped_tracks: freed.tracks, closed_contexts: freed.contexts });
  }
  send(S, { type: 'release', id: S.id, t: now() });
  notify(S);
}

// ---------------------------------------------------------------- media out

function onChunk(S, buf) {
  const a = new Int16Array(buf);
  let ss = 0;
  for (let i = 0; i < a.length; i++) ss += a[i] * a[i];
  const rms = Math.sqrt(ss / Math.max(1, a.length)) / 32768;
  S.level = rms > 0 ? 20 * Math.log10(rms) : -120;
  const t = now();
  const seq = S.aseq++;
  S.chunks++;
  S.bytes += buf.byteLength;
  S.lastChunkT = t;
  if (S.level > VOICE_DBFS) S.lastVoiceT = t;
  const D = S.direct;
  if (D && D.ready && D.ws.readyState === 1) {
    D.ws.send(JSON.stringify({ realtimeInput: { audio: { data: b64encode(buf), mimeType: 'audio/pcm;rate=16000' } } }));
    D.sentChunks++;
    if (!S.model.get('direct_mirror')) return;
  }
  send(S, { type: 'audio', seq, start_seq: S.runStart, t, sr: 16000, level: S.level }, [buf]);
}

async function grabFrame(S) {
  const v = S.video;
  if (S.frameBusy || !v || v.readyState < 2 || !v.videoWidth) return;
  S.frameBusy = true;
  try {
    const maxW = Math.max(16, Number(S.model.get('max_width')) || 640);
    const scale = Math.min(1, maxW / v.videoWidth);
    const w = Math.round(v.videoWidth * scale);
    const h = Math.round(v.videoHeight * scale);
    S.canvas.width = w;
    S.canvas.height = h;
    S.canvas.getContext('2d').drawImage(v, 0, 0, w, h);
    const q = Number(S.model.get('jpeg_quality')) || 0.7;
    const blob = await new Promise((r) => S.canvas.toBlob(r, 'image/jpeg', q));
    if (!blob || S.phase !== 'running') return;
    const buf = await blob.arrayBuffer();
    const t = now();
    const seq = S.fseq++;
    S.frames++;
    S.frameBytes += buf.byteLength;
    const D = S.direct;
    if (D && D.ready && D.ws.readyState === 1) {
      D.ws.send(JSON.stringify({ realtimeInput: { video: { data: b64encode(buf), mimeType: 'image/jpeg' } } }));
      D.sentFrames++;
      if (!S.model.get('direct_mirror')) return;
    }
    send(S, { type: 'frame', seq, t, w, h, mime: 'image/jpeg' }, [buf]);
  } catch (e) {
    fail(S, 'frame', e);
  } finally {
    S.frameBusy = false;
  }
}

// ---------------------------------------------------------------- playback

function enqueue(S, pcm) {
  // pcm: an ArrayBuffer we own (it is transferred to the worklet)
  if (!S.player) {
    S.playDropped += pcm.byteLength;
    return;
  }
  S.player.port.postMessage({ cmd: 'pcm', pcm }, [pcm]);
}

function endPlayback(S) {
  if (S.player) S.player.port.postMessage({ cmd: 'end' });
}

function clearPlayback(S) {
  if (S.player) S.player.port.postMessage({ cmd: 'clear' });
}

function onPlayer(S, p) {
  const was = S.pstats.speaking;
  S.pstats = p;
  if (p.speaking !== was || p.why === 'clear' || p.why === 'done') notify(S);
}

function peakFrequency(S) {
  const an = S.analyser;
  if (!an) return null;
  const d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  let best = -Infinity;
  let k = -1;
  for (let i = 1; i < d.length; i++) if (d[i] > best) { best = d[i]; k = i; }
  if (k < 0 || best < -90) return null; // silence
  return (k * S.playCtx.sampleRate) / an.fftSize;
}

// ---------------------------------------------------------------- kernel messages

function onKernel(S, msg, buffers) {
  const type = msg && msg.type;
  if (type === 'play') {
    const t = now();
    S.playMsgs++;
    if (typeof msg.t === 'number') {
      pushCapped(S.playLat, t - msg.t);
      S.playLatN++;
    }
    const dv = buffers && buffers[0];
    if (!dv || !dv.byteLength) return;
    // copy out: the DataView's offset may be odd, and we transfer the copy to the worklet
    enqueue(S, dv.buffer.slice(dv.byteOffset, dv.byteOffset + dv.byteLength));
  } else if (type === 'end') {
    endPlayback(S);
  } else if (type === 'clear') {
    clearPlayback(S);
  } else if (type === 'pong') {
    const t = now();
    S.lastPong = t;
    if (typeof msg.t === 'number') {
      pushCapped(S.rtt, t - msg.t, 500);
      S.rttN++;
    }
  } else if (type === 'claim') {
    if (msg.id === S.id && S.claim) S.claim(msg);
  } else if (type === 'stop') {
    stop(S, 'kernel');
  } else if (type === 'direct') {
    if (S.phase === 'running') openDirect(S, msg);
    else S.pendingDirect = msg;
    notify(S);
  } else if (type === 'direct_close') {
    S.pendingDirect = null;
    closeDirect(S, 'kernel');
  } else if (type === 'prebuffer') {
    if (S.player) S.player.port.postMessage({ cmd: 'prebuffer', samples: Math.round(24 * msg.ms) });
  }
}

function sendStats(S) {
  if (S.phase !== 'running') return;
  const ctxInfo = (c) =>
    c ? { rate: c.sampleRate, state: c.state, base_latency: c.baseLatency ?? null,
          output_latency: c.outputLatency ?? null, current_time: c.currentTime } : null;
  S.peakHz = peakFrequency(S);
  if (S.peakHz != null && S.pstats.speaking) S.lastPeakHz = S.peakHz;
  const D = S.direct;
  const st = {
    type: 'stats',
    t: now(),
    capture: ctxInfo(S.capCtx),
    playback: ctxInfo(S.playCtx),
    chunks: S.chunks,
    bytes: S.bytes,
    frames: S.frames,
    frame_bytes: S.frameBytes,
    level_dbfs: S.level,
    player: S.pstats,
    play_msgs: S.playMsgs,
    play_dropped_bytes: S.playDropped,
    play_latency: summary(S.playLat),
    play_latency_new: fresh(S.playLat, S.playLatN - S.playLatSent),
    rtt: summary(S.rtt),
    rtt_new: fresh(S.rtt, S.rttN - S.rttSent),
    peak_hz: S.peakHz,
    last_peak_hz: S.lastPeakHz,
    direct: D ? { url_host: D.host, ready: D.ready, sent_chunks: D.sentChunks, sent_frames: D.sentFrames,
                  audio_msgs: D.audioMsgs, audio_bytes: D.audioBytes, turns: D.turns } : null,
  };
  S.playLatSent = S.playLatN;
  S.rttSent = S.rttN;
  send(S, st);
  notify(S);
}

// ---------------------------------------------------------------- browser-direct mode

function openDirect(S, m) {
  closeDirect(S, 'reopen');
  let host = '';
  try {
    host = new URL(m.url).host;
  } catch (e) {}
  const D = {
    host, ready: false, ws: null, sentChunks: 0, sentFrames: 0, audioMsgs: 0, audioBytes: 0,
    turns: 0, inTurn: false, transcript: '', closed: false,
  };
  S.direct = D;
  const report = (kind, data = {}) => send(S, { type: 'direct_event', kind, t: now(), ...data });
  let ws;
  try {
    ws = new WebSocket(m.url);
  } catch (e) {
    report('error', { message: String(e) });
    return;
  }
  ws.binaryType = 'arraybuffer';
  D.ws = ws;
  const dec = new TextDecoder();
  ws.onopen = () => {
    ws.send(JSON.stringify({ setup: m.setup }));
    report('open');
  };
  ws.onerror = () => report('error', { message: 'WebSocket error (certificate not trusted, or refused)' });
  ws.onclose = (e) => {
    D.ready = false;
    D.closed = true;
    report('close', { code: e.code, reason: e.reason });
    notify(S);
  };
  ws.onmessage = (e) => {
    let j;
    try {
      j = JSON.parse(typeof e.data === 'string' ? e.data : dec.decode(e.data));
    } catch (err) {
      return;
    }
    onServer(S, D, j, report);
  };
  notify(S);
}

function onServer(S, D, j, report) {
  if (j.setupComplete) {
    D.ready = true;
    report('setup_complete');
    notify(S);
  }
  const sc = j.serverContent;
  if (sc) {
    if (sc.interrupted) {
      clearPlayback(S);
      D.inTurn = false;
      report('interrupted');
    }
    const parts = (sc.modelTurn && sc.modelTurn.parts) || [];
    for (const p of parts) {
      const d = p.inlineData;
      if (d && d.data && (!d.mimeType || d.mimeType.startsWith('audio/pcm'))) {
        const pcm = b64decode(d.data);
        D.audioMsgs++;
        D.audioBytes += pcm.byteLength;
        if (!D.inTurn) {
          D.inTurn = true;
          const est = S.lastVoiceT == null ? null : now() - S.lastVoiceT;
          report('first_audio', { since_voice_ms: est });
        }
        enqueue(S, pcm);
      }
    }
    if (sc.outputTranscription && sc.outputTranscription.text) {
      D.transcript += sc.outputTranscription.text;
      report('output_transcript', { text: sc.outputTranscription.text });
    }
    if (sc.inputTranscription && sc.inputTranscription.text) {
      report('input_transcript', { text: sc.inputTranscription.text });
    }
    if (sc.generationComplete) {
      endPlayback(S);
      report('generation_complete');
    }
    if (sc.turnComplete) {
      endPlayback(S);
      D.inTurn = false;
      D.turns++;
      report('turn_complete');
      notify(S);
    }
  }
  if (j.goAway) report('go_away', { time_left: j.goAway.timeLeft || null });
  if (j.usageMetadata) report('usage', { usage: j.usageMetadata });
  if (j.sessionResumptionUpdate) report('resumption', { update: j.sessionResumptionUpdate });
}

function closeDirect(S, why) {
  const D = S.direct;
  if (!D) return;
  S.direct = null;
  if (D.ws && D.ws.readyState <= 1) {
    try {
      D.ws.close(1000, why || 'closed');
    } catch (e) {}
  }
}

// ---------------------------------------------------------------- view

function statusText(S) {
  const m = S.model;
  const parts = [];
  const fresh = S.lastPong && now() - S.lastPong < 3000;
  if (S.phase === 'idle') parts.push(S.error ? 'stopped' : 'idle');
  else if (S.phase === 'starting') parts.push('starting…');
  else parts.push(fresh ? `kernel ✓ ${fmtMs(S.rtt[S.rtt.length - 1])}` : 'kernel ?');
  const sess = m.get('session_state');
  if (S.direct) parts.push(`direct ${S.direct.ready ? 'connected' : S.direct.closed ? 'closed' : 'connecting…'}`);
  else if (sess) parts.push(sess.startsWith('direct') ? sess : `session ${sess}`);
  if (S.phase === 'running') parts.push(now() - S.lastChunkT < 500 ? `sending ${S.chunks}` : 'not sending');
  if (S.pstats.speaking) parts.push('model speaking');
  const lat = m.get('last_latency_ms');
  if (lat != null) parts.push(`${m.get('latency_label') || 'latency'} ${fmtMs(lat)}`);
  return parts.join(' · ');
}

function buildView(S, el) {
  const view = { id: ++S.viewSeq, el };
  el.classList.add('lkl-bridge');
  const row = document.createElement('div');
  row.className = 'lkl-row';
  const btn = document.createElement('button');
  btn.className = 'lkl-btn mb-start';
  const meter = document.createElement('div');
  meter.className = 'lkl-meter';
  const fill = document.createElement('div');
  fill.className = 'lkl-meter-fill';
  meter.appendChild(fill);
  const status = document.createElement('span');
  status.className = 'lkl-status';
  row.append(btn, meter, status);
  const err = document.createElement('div');
  err.className = 'lkl-error';
  const media = document.createElement('div');
  media.className = 'lkl-media';
  el.append(row, media, err);

  btn.addEventListener('click', () => {
    if (S.phase === 'idle') start(S, view);
    else if (S.owner === view.id || S.phase === 'running') stop(S, 'user');
  });

  view.update = () => {
    const mine = S.owner === view.id;
    btn.textContent = S.phase === 'idle' ? 'Start' : S.phase === 'starting' ? 'Starting…' : 'Stop';
    btn.disabled = S.phase === 'starting' || S.phase === 'stopping';
    btn.classList.toggle('lkl-on', S.phase === 'running');
    const lv = S.phase === 'running' ? Math.max(0, Math.min(1, (S.level + 60) / 60)) : 0;
    fill.style.width = `${(lv * 100).toFixed(1)}%`;
    status.textContent = statusText(S) + (S.phase !== 'idle' && !mine ? ' (capture owned by another view)' : '');
    err.textContent = S.error;
    if (mine && S.video && S.video.parentNode !== media) media.appendChild(S.video);
    const p = S.pstats;
    const ds = el.dataset;
    ds.phase = S.phase;
    ds.chunks = String(S.chunks);
    ds.frames = String(S.frames);
    ds.played = String(p.played || 0);
    ds.queued = String(p.queued || 0);
    ds.underruns = String(p.underruns || 0);
    ds.clears = String(p.clears || 0);
    ds.cleared = String(p.cleared || 0);
    ds.playedRms = String(p.played ? Math.sqrt((p.sumsq || 0) / p.played) : 0);
    ds.speaking = String(!!p.speaking);
    ds.peakHz = S.peakHz == null ? '' : String(S.peakHz);
    ds.lastPeakHz = S.lastPeakHz == null ? '' : String(S.lastPeakHz);
    ds.direct = S.direct ? (S.direct.ready ? 'ready' : 'connecting') : '';
    ds.directTurns = S.direct ? String(S.direct.turns) : '0';
  };
  return view;
}

export default {
  initialize({ model }) {
    const S = stateFor(model);
    const onMsg = (msg, buffers) => onKernel(S, msg, buffers);
    model.on('msg:custom', onMsg);
    const onFrameMs = () => resetFrameTimer(S);
    model.on('change:frame_ms', onFrameMs);
    const refresh = () => notify(S);
    model.on('change:session_state', refresh);
    model.on('change:last_latency_ms', refresh);
    return () => {
      model.off('msg:custom', onMsg);
      model.off('change:frame_ms', onFrameMs);
      model.off('change:session_state', refresh);
      model.off('change:last_latency_ms', refresh);
      stop(S, 'model closed');
      STATES.delete(S.uid);
    };
  },

  render({ model, el }) {
    const S = stateFor(model);
    const view = buildView(S, el);
    S.views.add(view);
    const tick = setInterval(() => view.update(), 200);
    view.update();
    send(S, { type: 'view', id: view.id, t: now() });
    return () => {
      clearInterval(tick);
      S.views.delete(view);
      if (S.owner === view.id) stop(S, 'view removed'); // stops tracks, closes both contexts
    };
  },
};
