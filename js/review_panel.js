/*
 * FIXER review panel: one sampled patch at a time, reviewed by keys.
 *
 * Hand-written plain JS (no build step): the App loads it as a script
 * (fiftyone.yml js_bundle) and provides React, Recoil and its own modules
 * as globals (window.React, window.recoil, window.__fop__ plugins,
 * window.__fos__ state, window.__fou__ utilities).
 *
 * The queue (every sampled patch with its evidence and outline) is loaded
 * once from the get_review_queue operator. Crops are drawn here from the
 * images the App serves (/media), and the next images are prefetched, so
 * moving on never waits on the server. Verdicts go to set_review_verdict
 * in order, in the background; each answer carries the updated precision
 * estimate.
 *
 * Each patch also shows the nearest correctly labelled examples of its
 * suggested class (by colour and texture), outlined in green.
 *
 * Keys: C confirm, R reject, S skip, U clear the verdict,
 * Right / J next, Left / K previous.
 */
(function () {
  "use strict";

  var React = window.React;
  var h = React.createElement;
  var PLUGIN = "@fixer/fixer";
  var PREFETCH = 3; // images loaded ahead of the current patch
  var CANVAS_W = 480;
  var CANVAS_H = 360;
  var OUTLINE = "#ff00ff";
  var EXAMPLE_OUTLINE = "#00e676";
  var EXAMPLE_W = 160;
  var EXAMPLE_H = 120;

  // -- server ---------------------------------------------------------------

  function pathPrefix() {
    var fou = window.__fou__;
    try {
      if (fou && fou.getFetchParameters) {
        return fou.getFetchParameters().pathPrefix || "";
      }
    } catch (e) {
      /* the default prefix */
    }
    return "";
  }

  function execute(datasetName, operator, params) {
    var body = {
      dataset_name: datasetName,
      operator_uri: PLUGIN + "/" + operator,
      params: params,
    };
    var url = (pathPrefix() + "/operators/execute").replace(/\/\/+/g, "/");
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        return response.json().then(function (json) {
          if (!response.ok) {
            var detail = json && (json.detail || json.error);
            throw new Error(
              (detail && (detail.message || detail)) || response.statusText
            );
          }
          return json;
        });
      })
      .then(function (json) {
        if (json.error) {
          throw new Error(json.error_message || json.error);
        }
        return json.result;
      });
  }

  function mediaUrl(filepath) {
    var base = (pathPrefix() + "/media").replace(/\/\/+/g, "/");
    return base + "?filepath=" + encodeURIComponent(filepath);
  }

  // One image element per file, shared by its patches and loaded once
  var images = new Map();

  function loadImage(filepath) {
    if (!images.has(filepath)) {
      images.set(
        filepath,
        new Promise(function (resolve, reject) {
          var img = new Image();
          img.onload = function () {
            resolve(img);
          };
          img.onerror = function () {
            images.delete(filepath);
            reject(new Error("could not load " + filepath));
          };
          img.src = mediaUrl(filepath);
        })
      );
    }
    return images.get(filepath);
  }

  // -- drawing --------------------------------------------------------------

  /* The image window shown for a patch: its box with a margin as large as
   * the box (at least 32 px), widened to the canvas's aspect, clipped to the
   * image. */
  function cropWindow(patch, cw, ch) {
    var b = patch.box;
    var aspect = cw / ch;
    var w = Math.max(b[2] * 3, b[2] + 64);
    var hgt = Math.max(b[3] * 3, b[3] + 64);
    if (w / hgt < aspect) w = hgt * aspect;
    else hgt = w / aspect;
    w = Math.min(w, patch.width);
    hgt = Math.min(hgt, patch.height);
    var x = Math.min(Math.max(b[0] + b[2] / 2 - w / 2, 0), patch.width - w);
    var y = Math.min(Math.max(b[1] + b[3] / 2 - hgt / 2, 0), patch.height - hgt);
    return { x: x, y: y, w: w, h: hgt };
  }

  /* Draws the crop of ``item`` (a patch or an example: box, width,
   * height) on the canvas and outlines its ``outline`` polygons, or its box
   * when it has none. */
  function draw(canvas, img, item, color) {
    var cw = canvas.width;
    var ch = canvas.height;
    var ctx = canvas.getContext("2d");
    var win = cropWindow(item, cw, ch);
    var scale = Math.min(cw / win.w, ch / win.h);
    var dw = win.w * scale;
    var dh = win.h * scale;
    var ox = (cw - dw) / 2;
    var oy = (ch - dh) / 2;
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, cw, ch);
    ctx.drawImage(img, win.x, win.y, win.w, win.h, ox, oy, dw, dh);
    var b = item.box;
    var outlines = item.outline || [
      [
        [b[0] - 0.5, b[1] - 0.5],
        [b[0] + b[2] - 0.5, b[1] - 0.5],
        [b[0] + b[2] - 0.5, b[1] + b[3] - 0.5],
        [b[0] - 0.5, b[1] + b[3] - 0.5],
      ],
    ];
    outlines.forEach(function (points) {
      ctx.beginPath();
      points.forEach(function (p, i) {
        var px = ox + (p[0] + 0.5 - win.x) * scale;
        var py = oy + (p[1] + 0.5 - win.y) * scale;
        if (i === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      });
      ctx.closePath();
      ctx.lineWidth = 4;
      ctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
      ctx.stroke();
      ctx.lineWidth = 2;
      ctx.strokeStyle = color;
      ctx.stroke();
    });
  }

  function Crop(props) {
    var ref = React.useRef(null);
    var patch = props.patch;
    var _s = React.useState(null);
    var error = _s[0];
    var setError = _s[1];
    React.useEffect(
      function () {
        var live = true;
        setError(null);
        var canvas = ref.current;
        canvas.removeAttribute("data-drawn");
        loadImage(patch.filepath).then(
          function (img) {
            if (!live) return;
            draw(canvas, img, patch, OUTLINE);
            canvas.setAttribute("data-drawn", patch.id);
          },
          function (e) {
            if (live) setError(e.message);
          }
        );
        return function () {
          live = false;
        };
      },
      [patch]
    );
    return h(
      "div",
      null,
      h("canvas", {
        ref: ref,
        width: CANVAS_W,
        height: CANVAS_H,
        "data-cy": "fixer-review-crop",
        "data-patch-id": patch.id,
        "aria-label": "Image crop with the patch outlined",
        style: { maxWidth: "100%", borderRadius: 4 },
      }),
      error ? h("div", { style: styles.error }, error) : null
    );
  }

  function Example(props) {
    var ref = React.useRef(null);
    var example = props.example;
    React.useEffect(
      function () {
        var live = true;
        var canvas = ref.current;
        loadImage(example.filepath).then(
          function (img) {
            if (live) draw(canvas, img, example, EXAMPLE_OUTLINE);
          },
          function () {}
        );
        return function () {
          live = false;
        };
      },
      [example]
    );
    return h("canvas", {
      ref: ref,
      width: EXAMPLE_W,
      height: EXAMPLE_H,
      "data-cy": "fixer-review-example",
      title: "distance " + example.distance,
      style: { borderRadius: 4, marginRight: 8 },
    });
  }

  function Examples(props) {
    var p = props.patch;
    var examples = p.examples || [];
    return h(
      "div",
      { style: { marginTop: 12 }, "data-cy": "fixer-review-examples" },
      h(
        "div",
        { style: styles.muted },
        examples.length
          ? "What " +
              p.suggested_label +
              " looks like in your labels (nearest correctly labelled " +
              "regions, by colour and texture):"
          : "No correctly labelled " + p.suggested_label + " elsewhere."
      ),
      h(
        "div",
        { style: { display: "flex", flexWrap: "wrap", marginTop: 4 } },
        examples.map(function (e, i) {
          return h(Example, { key: p.id + "-" + i, example: e });
        })
      )
    );
  }

  // -- evidence -------------------------------------------------------------

  var styles = {
    root: {
      padding: 16,
      height: "100%",
      overflow: "auto",
      boxSizing: "border-box",
      fontSize: 14,
      color: "var(--fo-palette-text-primary, #eee)",
    },
    row: { display: "flex", gap: 16, flexWrap: "wrap", alignItems: "flex-start" },
    card: {
      flex: "1 1 160px",
      padding: 12,
      borderRadius: 6,
      background: "var(--fo-palette-background-level2, rgba(127,127,127,0.12))",
    },
    big: { fontSize: 20, fontWeight: 600, margin: "4px 0" },
    muted: { opacity: 0.75 },
    reason: { fontSize: 15, margin: "12px 0", lineHeight: 1.4 },
    buttons: { display: "flex", gap: 8, flexWrap: "wrap", margin: "12px 0" },
    error: { color: "#f44", margin: "8px 0" },
    bar: { height: 6, background: OUTLINE, borderRadius: 3 },
    button: {
      padding: "6px 12px",
      cursor: "pointer",
      borderRadius: 4,
      border: "1px solid rgba(127,127,127,0.6)",
      background: "rgba(127,127,127,0.15)",
      color: "inherit",
      font: "inherit",
    },
  };

  var VERDICT_STYLE = {
    confirmed: { background: "#2e7d32", color: "#fff" },
    rejected: { background: "#c62828", color: "#fff" },
    skipped: { background: "#616161", color: "#fff" },
    conflict: { background: "#ef6c00", color: "#fff" },
  };

  function num(value, digits) {
    return value === null || value === undefined
      ? "n/a"
      : Number(value).toFixed(digits === undefined ? 2 : digits);
  }

  function Evidence(props) {
    var p = props.patch;
    var tops = (p.top_classes || []).map(function (name, i) {
      var prob = p.top_probs[i];
      return h(
        "div",
        { key: name, style: { margin: "4px 0" } },
        h("div", null, name + " " + num(prob)),
        h("div", { style: Object.assign({}, styles.bar, { width: 200 * prob }) })
      );
    });
    var rule =
      p.rule === "region"
        ? "whole region (its mean probabilities name another class)"
        : "pixels (each pixel's own probabilities)";
    return h(
      "div",
      null,
      h(
        "div",
        { style: styles.row },
        h(
          "div",
          { style: styles.card, "data-cy": "fixer-review-given" },
          h("div", { style: styles.muted }, "Given label"),
          h("div", { style: styles.big }, p.given_label),
          h(
            "div",
            { style: styles.muted },
            "model: " +
              num(p.given_prob) +
              " (usually " +
              num(p.given_threshold) +
              " on its pixels)"
          )
        ),
        h(
          "div",
          { style: styles.card, "data-cy": "fixer-review-suggested" },
          h("div", { style: styles.muted }, "Suggestion"),
          h("div", { style: styles.big }, p.suggested_label),
          h(
            "div",
            { style: styles.muted },
            "P(label wrong) " + num(p.error_probability)
          )
        )
      ),
      h("div", { style: styles.reason, "data-cy": "fixer-review-reason" }, p.reason),
      h(
        "div",
        { style: styles.row },
        h(
          "div",
          { style: styles.card },
          h("div", { style: styles.muted }, "Model's top classes on the patch"),
          tops
        ),
        h(
          "div",
          { style: styles.card },
          h("div", null, "Flagged by: " + rule),
          p.cause ? h("div", null, "Image evidence: " + p.cause) : null,
          h(
            "div",
            null,
            "Same confusion elsewhere: " + (p.same_confusion || 0) + " patches"
          ),
          h("div", null, "Issue: " + (p.issue || "none (general error)")),
          h(
            "div",
            null,
            "Type: " + p.error_type + ", " + p.area + " px"
          )
        )
      )
    );
  }

  // -- panel ----------------------------------------------------------------

  function useDatasetName() {
    var fos = window.__fos__;
    var recoil = window.recoil;
    var name = null;
    if (fos && recoil && fos.datasetName) {
      name = recoil.useRecoilValue(fos.datasetName);
    }
    if (!name) {
      var match = window.location.pathname.match(/\/datasets\/([^/?#]+)/);
      name = match ? decodeURIComponent(match[1]) : null;
    }
    return name;
  }

  // Keys belong to the sample modal while it is open
  function modalOpen() {
    var modal = document.querySelector('[data-cy="modal"]');
    return !!(modal && modal.offsetParent !== null);
  }

  function isTyping(event) {
    var t = event.target;
    if (!t || !t.tagName) return false;
    var tag = t.tagName.toLowerCase();
    return (
      tag === "input" || tag === "textarea" || tag === "select" || t.isContentEditable
    );
  }

  function ReviewPanel() {
    var datasetName = useDatasetName();
    var _q = React.useState(null);
    var queue = _q[0];
    var setQueue = _q[1];
    var _i = React.useState(0);
    var index = _i[0];
    var setIndex = _i[1];
    var _v = React.useState({});
    var verdicts = _v[0];
    var setVerdicts = _v[1];
    var _e = React.useState(null);
    var estimate = _e[0];
    var setEstimate = _e[1];
    var _a = React.useState(true);
    var autoAdvance = _a[0];
    var setAutoAdvance = _a[1];
    var _err = React.useState(null);
    var error = _err[0];
    var setError = _err[1];
    var _p = React.useState(0);
    var pending = _p[0];
    var setPending = _p[1];
    var chain = React.useRef(Promise.resolve());

    var load = React.useCallback(
      function (runKey) {
        if (!datasetName) return;
        setError(null);
        execute(datasetName, "get_review_queue", { run_key: runKey || null }).then(
          function (result) {
            var marks = {};
            (result.patches || []).forEach(function (p) {
              if (p.verdict) marks[p.id] = p.verdict;
            });
            setVerdicts(marks);
            setEstimate(result.estimate || null);
            setIndex(0);
            setQueue(result);
          },
          function (e) {
            setError(e.message);
          }
        );
      },
      [datasetName]
    );

    React.useEffect(
      function () {
        load(null);
      },
      [load]
    );

    var patches = (queue && queue.patches) || [];
    var patch = patches[index];

    // Prefetch the images of the next patches
    React.useEffect(
      function () {
        for (var k = 1; k <= PREFETCH; k++) {
          var next = patches[index + k];
          if (!next) continue;
          [next].concat(next.examples || []).forEach(function (item) {
            loadImage(item.filepath).catch(function () {});
          });
        }
      },
      [patches, index]
    );

    var go = React.useCallback(
      function (step) {
        setIndex(function (i) {
          return Math.min(Math.max(i + step, 0), Math.max(patches.length - 1, 0));
        });
      },
      [patches.length]
    );

    var decide = React.useCallback(
      function (verdict) {
        if (!patch) return;
        var id = patch.id;
        setVerdicts(function (v) {
          var out = Object.assign({}, v);
          if (verdict === null) delete out[id];
          else out[id] = verdict;
          return out;
        });
        if (verdict !== "skipped") {
          // In order, in the background: the reviewer moves on at once
          setPending(function (n) {
            return n + 1;
          });
          chain.current = chain.current
            .then(function () {
              return execute(datasetName, "set_review_verdict", {
                run_key: queue.run_key,
                label_id: id,
                verdict: verdict,
              });
            })
            .then(
              function (result) {
                setEstimate(result.estimate);
              },
              function (e) {
                setError("Verdict not saved: " + e.message);
              }
            )
            .then(function () {
              setPending(function (n) {
                return n - 1;
              });
            });
        }
        if (autoAdvance && verdict !== null) go(1);
      },
      [patch, queue, datasetName, autoAdvance, go]
    );

    React.useEffect(
      function () {
        function onKey(event) {
          if (
            isTyping(event) ||
            modalOpen() ||
            event.ctrlKey ||
            event.metaKey ||
            event.altKey
          ) {
            return;
          }
          var actions = {
            c: function () {
              decide("confirmed");
            },
            r: function () {
              decide("rejected");
            },
            s: function () {
              decide("skipped");
            },
            u: function () {
              decide(null);
            },
            j: function () {
              go(1);
            },
            k: function () {
              go(-1);
            },
            ArrowRight: function () {
              go(1);
            },
            ArrowLeft: function () {
              go(-1);
            },
          };
          var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
          var action = actions[key];
          if (!action) return;
          event.preventDefault();
          event.stopImmediatePropagation();
          action();
        }
        window.addEventListener("keydown", onKey, true);
        return function () {
          window.removeEventListener("keydown", onKey, true);
        };
      },
      [decide, go]
    );

    if (!datasetName) return h("div", { style: styles.root }, "No dataset loaded.");
    if (error && !queue) {
      return h("div", { style: styles.root }, h("div", { style: styles.error }, error));
    }
    if (!queue) return h("div", { style: styles.root }, "Loading the review sample...");
    if (!queue.run_key) {
      return h(
        "div",
        { style: styles.root, "data-cy": "fixer-review-panel" },
        "No FIXER run of this dataset has a review sample: run ",
        h("b", null, "Draw review sample"),
        " first, then ",
        h("button", { onClick: function () { load(null); } }, "reload")
      );
    }

    var done = patches.filter(function (p) {
      var v = verdicts[p.id];
      return v === "confirmed" || v === "rejected";
    }).length;
    var verdict = patch ? verdicts[patch.id] : null;

    var estimateText = "No estimate until a patch is confirmed or rejected.";
    if (estimate && estimate.precision !== null && estimate.precision !== undefined) {
      estimateText =
        "Flag precision " +
        num(estimate.precision) +
        " (95%: " +
        num(estimate.low) +
        " - " +
        num(estimate.high) +
        "), from " +
        estimate.reviewed +
        " reviewed patches";
    }

    function button(label, onClick, cy, extra) {
      return h(
        "button",
        Object.assign(
          {
            onClick: onClick,
            "data-cy": cy,
            style: styles.button,
          },
          extra || {}
        ),
        label
      );
    }

    return h(
      "div",
      {
        style: styles.root,
        "data-cy": "fixer-review-panel",
        "data-pending": String(pending),
      },
      h(
        "div",
        { style: Object.assign({}, styles.row, { alignItems: "center" }) },
        queue.runs.length > 1
          ? h(
              "select",
              {
                value: queue.run_key,
                "aria-label": "Run",
                onChange: function (e) {
                  load(e.target.value);
                },
              },
              queue.runs.map(function (k) {
                return h("option", { key: k, value: k }, k);
              })
            )
          : h("b", null, "Run " + queue.run_key),
        h(
          "span",
          { "data-cy": "fixer-review-position" },
          patches.length ? "Patch " + (index + 1) + " of " + patches.length : ""
        ),
        h(
          "span",
          { "data-cy": "fixer-review-counts" },
          done + " done, " + (patches.length - done) + " left"
        ),
        h("span", { "data-cy": "fixer-review-estimate" }, estimateText),
        pending ? h("span", { style: styles.muted }, "saving...") : null
      ),
      error ? h("div", { style: styles.error }, error) : null,
      patch
        ? h(
            "div",
            { style: Object.assign({}, styles.row, { marginTop: 12 }) },
            h(
              "div",
              { style: { flex: "0 1 " + CANVAS_W + "px" } },
              h(Crop, { patch: patch }),
              h(
                "div",
                { style: styles.buttons },
                button("Confirm (C)", function () { decide("confirmed"); }, "fixer-review-confirm"),
                button("Reject (R)", function () { decide("rejected"); }, "fixer-review-reject"),
                button("Skip (S)", function () { decide("skipped"); }, "fixer-review-skip"),
                button("Previous (\u2190)", function () { go(-1); }, "fixer-review-previous"),
                button("Next (\u2192)", function () { go(1); }, "fixer-review-next"),
                h(
                  "label",
                  { style: { alignSelf: "center" } },
                  h("input", {
                    type: "checkbox",
                    checked: autoAdvance,
                    onChange: function (e) {
                      setAutoAdvance(e.target.checked);
                    },
                  }),
                  " auto-advance"
                )
              ),
              h(
                "div",
                {
                  "data-cy": "fixer-review-verdict",
                  style: Object.assign(
                    { padding: "4px 8px", borderRadius: 4, display: "inline-block" },
                    VERDICT_STYLE[verdict] || {}
                  ),
                },
                verdict ? "Verdict: " + verdict : "No verdict yet"
              )
            ),
            h(
              "div",
              { style: { flex: "1 1 320px" } },
              h(Evidence, { patch: patch }),
              h(Examples, { patch: patch })
            )
          )
        : h("div", null, "The review sample is empty.")
    );
  }

  var fop = window.__fop__;
  fop.registerComponent({
    name: "fixer_review",
    label: "FIXER review",
    component: ReviewPanel,
    type: fop.PluginComponentType.Panel,
    activator: function () {
      return true;
    },
    panelOptions: { surfaces: "grid" },
  });
})();
