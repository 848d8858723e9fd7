// NIfTI-1 in and out for "Try it on your scan" (try.js): a reader's .nii or .nii.gz read into Hounsfield units with
// its affine, exactly as nibabel reads it (sform when its code is set, else qform, else the voxel size), and a
// uint8 mask written with the input's own header (same dims, same sform and qform: the same geometry), gzipped.
// Refusals are Error objects with one sentence for the page's alert.
(function () {
  var MAX_VOXELS = 100000000;  // about 512 x 512 x 380: what a browser tab holds as float32 with room to work
  var TYPES = {  // NIfTI datatype code -> [typed array, bytes per voxel]
    2: [Uint8Array, 1], 4: [Int16Array, 2], 8: [Int32Array, 4], 16: [Float32Array, 4], 64: [Float64Array, 8],
    256: [Int8Array, 1], 512: [Uint16Array, 2], 768: [Uint32Array, 4],
  };
  var NAMES = { 128: "an RGB image", 2304: "an RGBA image", 32: "a complex-valued image", 1024: "64-bit integers" };

  function gunzip(bytes) {
    if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return Promise.resolve(bytes);
    if (typeof DecompressionStream === "undefined") return Promise.reject(new Error("this browser cannot unpack .gz files; unpack the scan to .nii first"));
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); },
      function () { throw new Error("the .gz file is damaged or truncated"); });
  }

  function gzip(bytes) {
    if (typeof CompressionStream === "undefined") return Promise.resolve(null);
    var stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }

  // nibabel's quaternion to affine (Nifti1Header.get_qform): rotation from (b, c, d), qfac from pixdim[0].
  function qformAffine(view, le, pixdim) {
    var b = view.getFloat32(256, le), c = view.getFloat32(260, le), d = view.getFloat32(264, le);
    var a = 1 - (b * b + c * c + d * d);
    a = a < 1e-7 ? 0 : Math.sqrt(a);
    var qfac = pixdim[0] < 0 ? -1 : 1;
    var R = [[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
             [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
             [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]];
    var zooms = [pixdim[1], pixdim[2], pixdim[3] * qfac], offset = [268, 272, 276];
    return [0, 1, 2].map(function (i) {
      return [R[i][0] * zooms[0], R[i][1] * zooms[1], R[i][2] * zooms[2], view.getFloat32(offset[i], le)];
    }).concat([[0, 0, 0, 1]]);
  }

  // bytes (Uint8Array, .nii or .nii.gz) -> {dims: [nx, ny, nz], affine: 4 x 4 rows, pixdim, hu: Float32Array,
  // header: the 348 header bytes, littleEndian}
  function read(raw) {
    return gunzip(raw).then(function (bytes) {
      if (bytes.length < 352) throw new Error("this is not a NIfTI file (too short for its header)");
      var view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      var le = view.getInt32(0, true) === 348;
      if (!le && view.getInt32(0, false) !== 348) {
        if (view.getInt32(0, true) === 540 || view.getInt32(0, false) === 540) throw new Error("this is a NIfTI-2 file; save the scan as NIfTI-1 (.nii or .nii.gz)");
        throw new Error("this is not a NIfTI file (no NIfTI-1 header): choose a .nii or .nii.gz CT, or a DICOM series");
      }
      var magic = String.fromCharCode(bytes[344], bytes[345], bytes[346]);
      if (magic !== "n+1") throw new Error(magic === "ni1" ? "this header's image is in a separate .img file; convert the pair to one .nii" : "this is not a NIfTI-1 file (its magic is missing)");
      var dim = [];
      for (var i = 0; i < 8; i++) dim.push(view.getInt16(40 + 2 * i, le));
      for (i = 4; i <= Math.min(dim[0], 7); i++) {
        if (dim[i] > 1) throw new Error("this is a " + dim[0] + "-D image (" + dim.slice(1, dim[0] + 1).join(" x ") + "); give one 3-D CT volume");
      }
      if (dim[0] < 3 || dim[1] < 2 || dim[2] < 2 || dim[3] < 1) throw new Error("this is not a 3-D volume (dims " + dim.slice(1, 4).join(" x ") + ")");
      var datatype = view.getInt16(70, le);
      if (!TYPES[datatype]) throw new Error("its voxels are " + (NAMES[datatype] || "of NIfTI type " + datatype) + ", not a CT's numbers");
      var voxels = dim[1] * dim[2] * dim[3];
      if (voxels > MAX_VOXELS) throw new Error("the volume has " + voxels.toLocaleString("en") + " voxels; a browser tab takes at most " + MAX_VOXELS.toLocaleString("en") + " (about 512 x 512 x 380): run `python -m pipeline.predict` instead");
      var pixdim = [];
      for (i = 0; i < 8; i++) pixdim.push(view.getFloat32(76 + 4 * i, le));
      var offset = Math.max(352, Math.round(view.getFloat32(108, le)));
      var Type = TYPES[datatype][0], size = TYPES[datatype][1];
      if (offset + voxels * size > bytes.length) throw new Error("the file is truncated: its header promises " + voxels.toLocaleString("en") + " voxels");
      var slope = view.getFloat32(112, le), inter = view.getFloat32(116, le);
      if (!isFinite(slope) || slope === 0) { slope = 1; inter = 0; }
      if (!isFinite(inter)) inter = 0;
      var hu = new Float32Array(voxels), low = Infinity, high = -Infinity;
      var aligned = (bytes.byteOffset + offset) % size === 0 && le === littleEndianMachine();
      var source = aligned ? new Type(bytes.buffer, bytes.byteOffset + offset, voxels) : null;
      for (i = 0; i < voxels; i++) {
        var v = source ? source[i] : readValue(view, offset + i * size, datatype, le);
        v = v * slope + inter;
        if (v !== v || v === Infinity || v === -Infinity) throw new Error("the volume holds NaN or infinite values");
        hu[i] = v;
        if (v < low) low = v;
        if (v > high) high = v;
      }
      if (low > -500 || high < 0) throw new Error("its values span [" + low.toFixed(0) + ", " + high.toFixed(0) + "]; a CT in Hounsfield units has air near -1000");
      var sform = view.getInt16(254, le), qform = view.getInt16(252, le), affine;
      if (sform > 0) {
        affine = [280, 296, 312].map(function (at) { return [0, 1, 2, 3].map(function (k) { return view.getFloat32(at + 4 * k, le); }); }).concat([[0, 0, 0, 1]]);
      } else if (qform > 0) {
        affine = qformAffine(view, le, pixdim);
      } else {
        // nibabel's base affine (shape_zoom_affine with x flipped): LAS, centred on the volume
        affine = [[-pixdim[1], 0, 0, (dim[1] - 1) / 2 * pixdim[1]], [0, pixdim[2], 0, -(dim[2] - 1) / 2 * pixdim[2]],
                  [0, 0, pixdim[3], -(dim[3] - 1) / 2 * pixdim[3]], [0, 0, 0, 1]];
      }
      return { dims: [dim[1], dim[2], dim[3]], affine: affine, pixdim: pixdim, hu: hu, littleEndian: le,
               header: bytes.slice(0, 348) };
    });
  }

  function littleEndianMachine() { return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1; }

  function readValue(view, at, datatype, le) {
    switch (datatype) {
      case 2: return view.getUint8(at);
      case 256: return view.getInt8(at);
      case 4: return view.getInt16(at, le);
      case 512: return view.getUint16(at, le);
      case 8: return view.getInt32(at, le);
      case 768: return view.getUint32(at, le);
      case 16: return view.getFloat32(at, le);
      default: return view.getFloat64(at, le);
    }
  }

  // A uint8 mask (x fastest, the input's dims) as NIfTI-1 bytes with the input's header: same dims and geometry.
  function write(scan, mask) {
    var out = new Uint8Array(352 + mask.length);
    out.set(scan.header, 0);
    var view = new DataView(out.buffer), le = scan.littleEndian;
    view.setInt16(70, 2, le);  // datatype: uint8
    view.setInt16(72, 8, le);  // bitpix
    view.setFloat32(108, 352, le);  // vox_offset: the header and an empty extension flag
    view.setFloat32(112, 1, le);  // scl_slope
    view.setFloat32(116, 0, le);  // scl_inter
    view.setFloat32(124, 1, le);  // cal_max
    view.setFloat32(128, 0, le);  // cal_min
    out.set(mask, 352);
    return out;
  }

  window.siteNifti = { read: read, write: write, gzip: gzip, MAX_VOXELS: MAX_VOXELS };
})();
