// AudioWorklet processor "pcm-capture": microphone float samples at the context rate
// -> 16 kHz mono Int16 chunks of `chunkSamples`, posted as transferred ArrayBuffers.
//
// Resampling is linear interpolation with a fractional read position carried across
// 128-frame render blocks (and the previous block's last sample). The graph in front of
// this node low-passes at 7 kHz when the context rate exceeds 16 kHz, so decimation does
// not alias. Loaded by bridge.js from a Blob URL; the Python side passes this text.
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.target = o.targetRate || 16000;
    this.chunk = o.chunkSamples || 640;
    this.step = sampleRate / this.target;
    this.pos = 0;        // fractional read position into the current block
    this.prev = 0;       // last sample of the previous block (position -1)
    this.buf = new Int16Array(this.chunk);
    this.n = 0;
    this.on = true;
    this.port.onmessage = (e) => {
      if (e.data && e.data.cmd === 'stop') this.on = false;
    };
  }

  process(inputs) {
    const ch = inputs[0];
    if (!this.on) return false;
    if (!ch || ch.length === 0) return true;   // no input connected yet
    const x = ch[0];
    let p = this.pos;
    while (p + 1 < x.length) {
      const i = Math.floor(p);
      const f = p - i;
      const a = i < 0 ? this.prev : x[i];
      let s = a + (x[i + 1] - a) * f;
      s = s > 1 ? 1 : s < -1 ? -1 : s;
      this.buf[this.n++] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff);
      if (this.n === this.chunk) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Int16Array(this.chunk);
        this.n = 0;
      }
      p += this.step;
    }
    this.pos = p - x.length;
    this.prev = x[x.length - 1];
    return true;
  }
}
registerProcessor('pcm-capture', PcmCapture);
