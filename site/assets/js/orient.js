// Axis order and direction, the same rule as pipeline.data.orientation (nibabel's io_orientation and aff2axcodes):
// each array axis, in order, takes the world axis its affine column points along most (a world axis taken once),
// and a scan is brought to a model's orientation by exact axis swaps and flips, never resampled. try.js runs the
// model on the scan in its training data's orientation and brings the mask back to the scan's own.
(function () {
  var LETTERS = [["L", "R"], ["P", "A"], ["I", "S"]];  // world axis -> [negative, positive] (RAS+)
  var AXIS = { L: 0, R: 0, P: 1, A: 1, I: 2, S: 2 };

  function codes(affine) {
    var columns = [0, 1, 2].map(function (j) {
      var c = [affine[0][j], affine[1][j], affine[2][j]];
      var norm = Math.hypot(c[0], c[1], c[2]) || 1;
      return c.map(function (v) { return v / norm; });
    });
    var used = [false, false, false], out = "";
    columns.forEach(function (c) {
      var best = -1;
      for (var i = 0; i < 3; i++) if (!used[i] && (best < 0 || Math.abs(c[i]) > Math.abs(c[best]))) best = i;
      used[best] = true;
      out += LETTERS[best][c[best] < 0 ? 0 : 1];
    });
    return out;
  }

  // data (x fastest, dims [nx, ny, nz]) in orientation `from`, returned in orientation `to`: {data, dims}
  function reorient(data, dims, from, to) {
    if (!to || from === to) return { data: data, dims: dims.slice() };
    var source = [], flip = [], outDims = [];
    for (var t = 0; t < 3; t++) {
      var s = [0, 1, 2].filter(function (k) { return AXIS[from[k]] === AXIS[to[t]]; })[0];
      source.push(s);
      flip.push(from[s] !== to[t]);
      outDims.push(dims[s]);
    }
    var stride = [1, dims[0], dims[0] * dims[1]];
    var out = new data.constructor(data.length);
    // for each output axis: where its index 0 starts in the input and how far one step moves there
    var step = [0, 1, 2].map(function (t) { return flip[t] ? -stride[source[t]] : stride[source[t]]; });
    var start = [0, 1, 2].reduce(function (sum, t) { return sum + (flip[t] ? (dims[source[t]] - 1) * stride[source[t]] : 0); }, 0);
    var o = 0;
    for (var z = 0, pz = start; z < outDims[2]; z++, pz += step[2]) {
      for (var y = 0, py = pz; y < outDims[1]; y++, py += step[1]) {
        for (var x = 0, px = py; x < outDims[0]; x++, px += step[0]) out[o++] = data[px];
      }
    }
    return { data: out, dims: outDims };
  }

  window.siteOrient = { codes: codes, reorient: reorient };
})();
