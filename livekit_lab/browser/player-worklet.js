// AudioWorklet processor "pcm-player": plays 24 kHz PCM16 chunks in a 24 kHz AudioContext.
//
// A FIFO of Int16Arrays behind a jitter buffer: output starts once `prebuffer` samples are
// queued (or the stream is marked ended), and after an underrun it re-buffers. Commands on
// the port: {cmd:'pcm', pcm: ArrayBuffer} enqueue; {cmd:'end'} the response is complete
// (play the tail even below the prebuffer); {cmd:'clear'} drop everything now (barge-in);
// {cmd:'prebuffer', samples}. Counters are posted every 0.25 s and on every state change:
// played and starved samples, underruns, queued samples, clears and cleared samples.
class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.prebuffer = o.prebufferSamples || 3600;
    this.q = [];          // Int16Array chunks
    this.head = 0;        // read offset into q[0]
    this.queued = 0;      // samples waiting
    this.primed = false;  // output running (prebuffer reached or stream ended)
    this.streaming = false; // a response is in progress (pcm seen, no end/clear yet)
    this.ended = false;
    this.started = false; // this response has produced sound (underruns count only after)
    this.played = 0; this.sumsq = 0; this.starved = 0; this.underruns = 0;
    this.clears = 0; this.cleared = 0; this.responses = 0; this.pcmIn = 0;
    this.lastReport = 0;
    this.port.onmessage = (e) => this.command(e.data || {});
  }

  command(m) {
    if (m.cmd === 'pcm') {
      const a = new Int16Array(m.pcm);
      if (!a.length) return;
      if (!this.streaming) { this.streaming = true; this.started = false; this.responses++; }
      this.ended = false;
      this.q.push(a);
      this.queued += a.length;
      this.pcmIn += a.length;
      if (!this.primed && this.queued >= this.prebuffer) this.primed = true;
    } else if (m.cmd === 'end') {
      if (this.streaming) { this.ended = true; this.primed = true; }
    } else if (m.cmd === 'clear') {
      this.cleared += this.queued;
      this.clears++;
      this.q = []; this.head = 0; this.queued = 0;
      this.primed = false; this.streaming = false; this.ended = false; this.started = false;
      this.report('clear');
      return;
    } else if (m.cmd === 'prebuffer') {
      this.prebuffer = Math.max(0, m.samples | 0);
    }
  }

  report(why) {
    this.port.postMessage({
      why, played: this.played, starved: this.starved, underruns: this.underruns,
      queued: this.queued, sumsq: this.sumsq, clears: this.clears, cleared: this.cleared,
      responses: this.responses, pcmIn: this.pcmIn,
      speaking: this.streaming || this.queued > 0, frame: currentFrame,
    });
    this.lastReport = currentFrame;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const n = out.length;
    let i = 0;
    if (this.primed) {
      while (i < n && this.queued > 0) {
        const a = this.q[0];
        const take = Math.min(n - i, a.length - this.head);
        for (let k = 0; k < take; k++) {
          const v = a[this.head + k] / 32768;
          out[i + k] = v;
          this.sumsq += v * v;
        }
        i += take; this.head += take; this.queued -= take;
        if (this.head >= a.length) { this.q.shift(); this.head = 0; }
      }
    }
    for (let k = i; k < n; k++) out[k] = 0;
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    this.played += i;
    if (i > 0) this.started = true;
    let why = null;
    if (this.queued === 0 && this.streaming) {
      if (this.ended) {           // the response's tail has played out
        this.streaming = false; this.ended = false; this.primed = false; this.started = false;
        why = 'done';
      } else if (this.started && this.primed) {  // ran dry mid-response: count and re-buffer
        this.starved += n - i;
        this.underruns++;
        this.primed = false;
        why = 'underrun';
      } else if (this.started) {
        this.starved += n - i;    // still re-buffering
      }
    }
    if (why || currentFrame - this.lastReport >= sampleRate / 4) this.report(why || 'tick');
    return true;
  }
}
registerProcessor('pcm-player', PcmPlayer);
