// The script of the tour's report: the cost calculator (the formulas of sepconv.cost.compare),
// the kernel gallery and tap-to-enlarge figures on narrow screens.
//
// window.sepconvCost(h, w, c_in, k, c_out, stride, padding) returns the multiplications
// {normal, depthwise, pointwise} of a k x k convolution of an h x w x c_in input with c_out
// filters, and of its depthwise separable replacement (depthwise k x k with the stride and
// padding, then pointwise 1 x 1), exactly as sepconv.cost.compare((h, w, c_in), k, c_out,
// stride=stride, padding=padding) counts them. padding is 'valid', 'same' (TensorFlow/Keras:
// output ceil(n / stride)) or a non-negative integer (zeros on every side). Bad arguments
// throw, as sepconv.cost raises; counts above 2^53 - 1 throw a RangeError (a JavaScript number
// could not hold them exactly). window.sepconvRatioText(ratio, digits) words old / new as
// sepconv._text.ratio_text does.
(function () {
  "use strict";

  function positive(name, value) {
    if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
      throw new RangeError("`" + name + "` must be a positive integer, got " + String(value));
    }
    return value;
  }

  function outputSize(axis, n, k, stride, padding) {
    if (padding === "same") {
      return Math.ceil(n / stride);
    }
    var padded = padding === "valid" ? n : n + 2 * padding;
    if (padded < k) {
      throw new RangeError("`kernel_size` " + k + " spans more than the padded input's " +
        padded + " along spatial axis " + axis + "; use padding='same' or a larger input");
    }
    return Math.floor((padded - k) / stride) + 1;
  }

  function exact(name, value) {
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(name + " multiplications exceed 2^53 - 1: too many to show exactly");
    }
    return Number(value);
  }

  function sepconvCost(h, w, c_in, k, c_out, stride, padding) {
    positive("h", h);
    positive("w", w);
    positive("c_in", c_in);
    positive("k", k);
    positive("c_out", c_out);
    stride = stride === undefined ? 1 : positive("stride", stride);
    if (padding === undefined) {
      padding = "valid";
    }
    if (typeof padding === "string") {
      padding = padding.toLowerCase();
      if (padding !== "valid" && padding !== "same") {
        throw new RangeError("`padding` must be 'valid', 'same' or a non-negative integer, " +
          "got '" + padding + "'");
      }
    } else if (typeof padding !== "number" || !Number.isInteger(padding) || padding < 0) {
      throw new RangeError("`padding` must be 'valid', 'same' or a non-negative integer, got " +
        String(padding));
    }
    var ho = BigInt(outputSize(0, h, k, stride, padding));
    var wo = BigInt(outputSize(1, w, k, stride, padding));
    var positions = ho * wo;
    var taps = BigInt(k) * BigInt(k);
    var cin = BigInt(c_in);
    var cout = BigInt(c_out);
    return {
      normal: exact("normal", positions * taps * cin * cout),
      depthwise: exact("depthwise", positions * taps * cin),
      pointwise: exact("pointwise", positions * cin * cout)
    };
  }

  window.sepconvCost = sepconvCost;

  // old / new in words, the rule of sepconv._text.ratio_text: a factor from 2 times on
  // ("22.78x fewer"), below that a percentage of the old count ("6% more"), never "0.50x fewer".
  function halfUp(value, digits) {
    var scale = Math.pow(10, digits);
    return (Math.floor(value * scale + 0.5) / scale).toFixed(digits);
  }

  function ratioText(ratio, digits) {
    if (typeof ratio !== "number" || !isFinite(ratio) || ratio <= 0) {
      throw new RangeError("`ratio` must be a finite number > 0, got " + String(ratio));
    }
    digits = digits === undefined ? 1 : digits;
    var fewer = ratio >= 1;
    var factor = fewer ? ratio : 1 / ratio;
    var word = fewer ? "fewer" : "more";
    if (factor >= 2) {
      return halfUp(factor, digits) + "x " + word;
    }
    var change = fewer ? 100 * (1 - 1 / factor) : 100 * (factor - 1);
    var shown = change >= 0.95 ? halfUp(change, 0) : halfUp(change, 1);
    return shown === "0.0" ? "the same" : shown + "% " + word;
  }

  window.sepconvRatioText = ratioText;

  // --- the interactive form --------------------------------------------------------------
  function $(id) {
    return document.getElementById(id);
  }

  function grouped(n) {
    return n.toLocaleString("en-US");
  }

  function update() {
    var form = $("calc");
    if (!form) {
      return;
    }
    var v = function (name) { return Number(form.elements[name].value); };
    var paddingChoice = form.elements.padding.value;
    var padding = paddingChoice === "valid" || paddingChoice === "same" ?
      paddingChoice : Number(paddingChoice);
    var out = $("calc-out");
    try {
      var h = v("h"), w = v("w"), cin = v("c_in"), k = v("k"), cout = v("c_out"),
        s = v("stride");
      var c = sepconvCost(h, w, cin, k, cout, s, padding);
      var separable = c.depthwise + c.pointwise;
      var ho = outputSize(0, h, k, s, padding), wo = outputSize(1, w, k, s, padding);
      $("calc-shape").textContent = h + "×" + w + "×" + cin + " → " + ho + "×" + wo + "×" + cout;
      $("calc-normal").textContent = grouped(c.normal);
      $("calc-depthwise").textContent = grouped(c.depthwise);
      $("calc-pointwise").textContent = grouped(c.pointwise);
      $("calc-separable").textContent = grouped(separable);
      var ratio = c.normal / separable;
      $("calc-ratio").textContent = ratioText(ratio, 2) + " (" +
        (separable / c.normal).toFixed(4) + " of the work)";
      $("calc-rule").textContent = "1/" + cout + " + 1/" + (k * k) + " = " +
        (1 / cout + 1 / (k * k)).toFixed(4);
      var top = Math.log10(Math.max(c.normal, 10));
      var bar = function (id, value) {
        $(id).style.width = (100 * Math.log10(Math.max(value, 1)) / top).toFixed(1) + "%";
      };
      bar("bar-normal", c.normal);
      bar("bar-depthwise", c.depthwise);
      bar("bar-pointwise", c.pointwise);
      bar("bar-separable", separable);
      out.classList.remove("calc-error");
      $("calc-message").textContent = "";
    } catch (err) {
      // No numbers of an earlier, valid input stay on show next to the error.
      RESULTS.forEach(function (id) { $(id).textContent = ""; });
      BARS.forEach(function (id) { $(id).style.width = "0"; });
      out.classList.add("calc-error");
      $("calc-message").textContent = err.message;
    }
  }

  var RESULTS = ["calc-shape", "calc-normal", "calc-depthwise", "calc-pointwise",
    "calc-separable", "calc-ratio", "calc-rule"];
  var BARS = ["bar-normal", "bar-depthwise", "bar-pointwise", "bar-separable"];

  function preset(values) {
    var form = $("calc");
    Object.keys(values).forEach(function (name) {
      form.elements[name].value = values[name];
    });
    update();
  }

  function gallery() {
    var holder = $("gallery-data");
    if (!holder) {
      return;
    }
    var items = JSON.parse(holder.textContent);
    Array.prototype.forEach.call(document.querySelectorAll("[data-kernel]"), function (button) {
      button.addEventListener("click", function () {
        var item = items[Number(button.getAttribute("data-kernel"))];
        $("gallery-kernel").src = item.kernel;
        $("gallery-response").src = item.response;
        $("gallery-text").innerHTML = item.text;
        Array.prototype.forEach.call(document.querySelectorAll("[data-kernel]"), function (b) {
          b.setAttribute("aria-pressed", b === button ? "true" : "false");
        });
      });
    });
  }

  function zoom() {
    // On a narrow screen a tap shows a figure at twice the size, to scroll sideways.
    Array.prototype.forEach.call(document.querySelectorAll("figure img"), function (img) {
      img.addEventListener("click", function () {
        if (window.matchMedia("(max-width: 40rem)").matches) {
          img.classList.toggle("wide");
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    gallery();
    zoom();
    var form = $("calc");
    if (!form) {
      return;
    }
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    Array.prototype.forEach.call(document.querySelectorAll("[data-preset]"), function (button) {
      button.addEventListener("click", function () {
        preset(JSON.parse(button.getAttribute("data-preset")));
      });
    });
    update();
  });
})();
