// The session panel's countdown. The page says when the session ends without this file; this
// counts the seconds down from the moment the page arrived (the server's count, so a wrong clock
// on this computer does not matter) and says when the session has ended.
(function () {
  "use strict";
  var box = document.getElementById("countdown");
  var out = document.getElementById("countdown-value");
  var ended = document.getElementById("countdown-ended");
  if (!box || !out) {
    return;
  }
  var left = Number(box.getAttribute("data-seconds-left"));
  if (!isFinite(left)) {
    return;
  }
  var arrived = Date.now();
  var pad = function (n) {
    return (n < 10 ? "0" : "") + n;
  };
  var show = function (s) {
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var text = (h > 0 ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
    out.textContent = text;
  };
  var tick = function () {
    var now = Math.max(0, Math.ceil(left - (Date.now() - arrived) / 1000));
    show(now);
    if (now === 0) {
      box.classList.add("is-ended");
      if (ended) {
        ended.textContent = box.getAttribute("data-ended");
      }
      return;
    }
    // Wake at the next whole second of the count.
    var next = ((left * 1000 - (Date.now() - arrived)) % 1000) || 1000;
    window.setTimeout(tick, next + 20);
  };
  out.hidden = false;
  box.classList.add("is-live");
  tick();
})();
