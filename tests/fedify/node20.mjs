// Node 20 (Debian's nodejs) lacks ArrayBuffer.prototype.transfer (Node 21+),
// which byte-encodings, a dependency of Fedify 1.10, calls when decoding
// base64: without it Fedify cannot read any PEM public key. A copying
// stand-in is enough for that use (the old buffer is never used again).
if (typeof ArrayBuffer.prototype.transfer !== "function") {
  Object.defineProperty(ArrayBuffer.prototype, "transfer", {
    value: function transfer(length = this.byteLength) {
      const copy = new ArrayBuffer(length);
      new Uint8Array(copy).set(new Uint8Array(this, 0, Math.min(length, this.byteLength)));
      return copy;
    },
    configurable: true,
    writable: true,
  });
}
