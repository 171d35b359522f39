/*
 * FIXER review panel: the patches of a view, one at a time, reviewed by keys.
 *
 * Hand-written plain JS (no build step): the App loads it as a script
 * (fiftyone.yml js_bundle) and provides React, Recoil and its own modules
 * as globals (window.React, window.recoil, window.__fop__ plugins,
 * window.__fos__ state, window.__fou__ utilities).
 *
 * The queue is the FIXER patches of a view, in the view's order: by default
 * the view open in the App when it holds patches, else the first review
 * sample (draw_review_sample); any run's saved view can be picked. The
 * get_review_queue operator answers with the order (every patch id) and
 * the first page of rows; further pages (get_review_page) and each page's
 * nearest examples (get_review_examples) are fetched ahead, and the
 * next images are prefetched, so moving on never waits on the server and a
 * queue of thousands opens as fast as one of ten. Verdicts go to
 * set_review_verdict in order, in the background; each answer carries the
 * updated precision estimate. The order learns from them: a page is
 * fetched AHEAD patches before the reviewer reaches it, and first what
 * follows the pages fetched is reordered by the verdicts so far
 * (get_review_order), so the pairs the reviewer rejects sink while the
 * review goes on (not in a run's review sample, which keeps its order).
 *
 * Each patch also shows the nearest correctly labelled examples of its
 * suggested class, outlined in green, and says what "nearest" was measured
 * by: the model's features, or colour and texture.
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
  var PAGE = 50; // patches per page of the queue
  // The next page is fetched this many patches before it: time enough for
  // it and its images to arrive, late enough for most of this page's
  // verdicts to order it
  var AHEAD = 10;
  var CURRENT_VIEW = "current view"; // the App's view, as a queue source
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

  /* Runs one of the plugin's operators; ``view`` (optional) is the App's
   * current view, as the App's own operator calls send it. */
  function execute(datasetName, operator, params, view) {
    var body = Object.assign({}, view || {}, {
      dataset_name: datasetName,
      operator_uri: PLUGIN + "/" + operator,
      params: params,
    });
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

  var MEASURES = {
    "model features": "by the model's features: its class scores over the region",
    "colour/texture": "by colour and texture (no model output to compare)",
  };

  function Examples(props) {
    var p = props.patch;
    var examples = props.examples;
    var text;
    if (!examples) {
      text = "Finding correctly labelled " + p.suggested_label + " elsewhere...";
    } else if (examples.length) {
      text =
        "What " +
        p.suggested_label +
        " looks like in your labels: the nearest correctly labelled " +
        "regions, " +
        (MEASURES[props.descriptor] || props.descriptor) +
        ".";
    } else {
      text = "No correctly labelled " + p.suggested_label + " elsewhere.";
    }
    return h(
      "div",
      { style: { marginTop: 12 }, "data-cy": "fixer-review-examples" },
      h(
        "div",
        {
          style: styles.muted,
          "data-cy": "fixer-review-descriptor",
          "data-descriptor": props.descriptor || "",
        },
        text
      ),
      h(
        "div",
        { style: { display: "flex", flexWrap: "wrap", marginTop: 4 } },
        (examples || []).map(function (e, i) {
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

  // A class name in a card: its title above, a note below
  function labelCard(cy, title, name, note) {
    return h(
      "div",
      { style: styles.card, "data-cy": cy },
      h("div", { style: styles.muted }, title),
      h("div", { style: styles.big }, name),
      h("div", { style: styles.muted }, note)
    );
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
        labelCard(
          "fixer-review-given",
          "Given label",
          p.given_label,
          "model: " +
            num(p.given_prob) +
            " (usually " +
            num(p.given_threshold) +
            " on its pixels)"
        ),
        labelCard(
          "fixer-review-suggested",
          "Suggestion",
          p.suggested_label,
          "P(label wrong) " + num(p.error_probability)
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

  /* The App's current view as operator requests carry it (stages, saved
   * view name, sidebar filters, extended stages). */
  function useViewContext() {
    var fos = window.__fos__ || {};
    var recoil = window.recoil;
    function value(atom) {
      return atom && recoil ? recoil.useRecoilValue(atom) : null;
    }
    var view = value(fos.view);
    var viewName = value(fos.viewName);
    var filters = value(fos.filters);
    var extended = value(fos.extendedStages);
    return React.useMemo(
      function () {
        return {
          view: view || [],
          view_name: viewName || null,
          filters: filters || {},
          extended: extended || null,
        };
      },
      [view, viewName, filters, extended]
    );
  }

  function isDone(verdict) {
    return verdict === "confirmed" || verdict === "rejected";
  }

  function ReviewPanel() {
    var datasetName = useDatasetName();
    var viewContext = useViewContext();
    var viewKey = JSON.stringify(viewContext);
    var _q = React.useState(null);
    var queue = _q[0];
    var setQueue = _q[1];
    var _r = React.useState({});
    var rows = _r[0]; // page index -> rows
    var setRows = _r[1];
    var _x = React.useState({});
    var examples = _x[0]; // patch id -> examples
    var setExamples = _x[1];
    var _d = React.useState(null);
    var descriptor = _d[0];
    var setDescriptor = _d[1];
    var _i = React.useState(0);
    var index = _i[0];
    var setIndex = _i[1];
    var _v = React.useState({});
    var verdicts = _v[0]; // this session's verdicts: patch id -> verdict
    var setVerdicts = _v[1];
    var _o = React.useState({});
    var original = _o[0]; // patch id -> verdict when its page came
    var setOriginal = _o[1];
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
    var requested = React.useRef(new Set()); // pages asked for
    // The queue's order as last learned, each patch's place in its view
    // (null: the order does not learn), the verdicts given since, and the
    // pages' fetches, one after the other
    var order = React.useRef({ ids: [], places: null });
    var decided = React.useRef(0);
    var fetching = React.useRef(Promise.resolve());
    var _l = React.useState(0);
    var relearned = _l[0]; // times this queue's tail was reordered
    var setRelearned = _l[1];
    var _s = React.useState([]);
    var sinking = _s[0]; // the pairs the verdicts move down
    var setSinking = _s[1];
    var generation = React.useRef(0); // answers of older queues are dropped
    var viewRef = React.useRef(viewContext);
    viewRef.current = viewContext;

    var addPage = React.useCallback(
      function (gen, runKey, page, pageRows) {
        if (gen !== generation.current) return;
        setRows(function (r) {
          var out = Object.assign({}, r);
          out[page] = pageRows;
          return out;
        });
        setOriginal(function (o) {
          var out = Object.assign({}, o);
          pageRows.forEach(function (row) {
            if (!(row.id in out)) out[row.id] = row.verdict;
          });
          return out;
        });
        if (!pageRows.length) return;
        var ids = pageRows.map(function (row) {
          return row.id;
        });
        execute(datasetName, "get_review_examples", { run_key: runKey, ids: ids }).then(
          function (result) {
            if (gen !== generation.current) return;
            setDescriptor(result.descriptor);
            setExamples(function (x) {
              return Object.assign({}, x, result.examples);
            });
          },
          function (e) {
            if (gen !== generation.current) return;
            var none = {};
            ids.forEach(function (id) {
              none[id] = [];
            });
            setExamples(function (x) {
              return Object.assign({}, x, none);
            });
            setError("No examples: " + e.message);
          }
        );
      },
      [datasetName]
    );

    var load = React.useCallback(
      function (source) {
        if (!datasetName) return;
        var gen = ++generation.current;
        setError(null);
        execute(
          datasetName,
          "get_review_queue",
          { source: source || null, page_size: PAGE },
          viewRef.current
        ).then(
          function (result) {
            if (gen !== generation.current) return;
            requested.current = new Set([0]);
            order.current = { ids: result.ids || [], places: result.places || null };
            decided.current = 0;
            fetching.current = Promise.resolve();
            setRelearned(0);
            setSinking(result.sinking || []);
            result.generation = gen;
            setRows({});
            setExamples({});
            setDescriptor(null);
            setVerdicts({});
            setOriginal({});
            setEstimate(result.estimate || null);
            setIndex(0);
            setQueue(result);
            if (result.run_key) addPage(gen, result.run_key, 0, result.rows || []);
          },
          function (e) {
            if (gen === generation.current) setError(e.message);
          }
        );
      },
      [datasetName, addPage]
    );

    // The first queue, and again whenever the App's view changes, unless
    // the reviewer picked a saved view here
    var picked = React.useRef(null);
    React.useEffect(
      function () {
        if (picked.current === null || picked.current === CURRENT_VIEW) {
          load(picked.current);
        }
      },
      [load, viewKey]
    );

    var ids = (queue && queue.ids) || [];
    var total = ids.length;
    var runKey = queue && queue.run_key;

    /* The order of the queue from ``start`` on, learned from the verdicts
     * given since it was last learned (saved first), or as it is. */
    var learnTail = React.useCallback(
      function (gen, start) {
        var places = order.current.places;
        if (!places || !decided.current || start >= total) {
          return Promise.resolve(order.current.ids);
        }
        decided.current = 0;
        var tailIds = order.current.ids.slice(start);
        var tailPlaces = places.slice(start);
        return chain.current
          .then(function () {
            return execute(datasetName, "get_review_order", {
              run_key: runKey,
              ids: tailIds,
              places: tailPlaces,
            });
          })
          .then(
            function (result) {
              if (gen !== generation.current) return order.current.ids;
              var ids = order.current.ids.slice(0, start);
              var at = places.slice(0, start);
              result.order.forEach(function (k) {
                ids.push(tailIds[k]);
                at.push(tailPlaces[k]);
              });
              order.current = { ids: ids, places: at };
              setQueue(function (q) {
                return q && q.generation === gen ? Object.assign({}, q, { ids: ids }) : q;
              });
              setRelearned(function (n) {
                return n + 1;
              });
              setSinking(result.sinking || []);
              return ids;
            },
            function (e) {
              // the order stays as it was, to be learned again at the next page
              if (gen === generation.current) {
                decided.current += 1;
                setError("Order not updated: " + e.message);
              }
              return order.current.ids;
            }
          );
      },
      [datasetName, runKey, total]
    );

    var ensurePage = React.useCallback(
      function (page) {
        // (not while another queue is loading: these ids are the old one's)
        var gen = queue && queue.generation;
        if (gen !== generation.current) return;
        if (!runKey || page * PAGE >= total || requested.current.has(page)) return;
        requested.current.add(page);
        // Pages come one after the other, each in the order the verdicts
        // so far teach (what is fetched keeps its place)
        fetching.current = fetching.current
          .then(function () {
            if (gen !== generation.current) return null;
            return learnTail(gen, page * PAGE);
          })
          .then(function (ids) {
            if (!ids || gen !== generation.current) return null;
            var pageIds = ids.slice(page * PAGE, (page + 1) * PAGE);
            return execute(datasetName, "get_review_page", {
              run_key: runKey,
              ids: pageIds,
            }).then(function (result) {
              addPage(gen, runKey, page, result.rows || []);
            });
          })
          .catch(function (e) {
            if (gen !== generation.current) return;
            requested.current.delete(page);
            setError("Page not loaded: " + e.message);
          });
      },
      [datasetName, queue, runKey, total, addPage, learnTail]
    );

    function rowAt(i) {
      var pageRows = rows[Math.floor(i / PAGE)];
      return pageRows ? pageRows[i % PAGE] : undefined;
    }
    var patch = rowAt(index);

    // The current page, and the next one near this one's end
    React.useEffect(
      function () {
        var page = Math.floor(index / PAGE);
        ensurePage(page);
        if (index % PAGE >= PAGE - AHEAD) ensurePage(page + 1);
      },
      [index, ensurePage]
    );

    // Prefetch the images of the next patches and their examples
    React.useEffect(
      function () {
        for (var k = 1; k <= PREFETCH; k++) {
          var next = rowAt(index + k);
          if (!next) continue;
          [next].concat(examples[next.id] || []).forEach(function (item) {
            loadImage(item.filepath).catch(function () {});
          });
        }
      },
      [rows, examples, index]
    );

    var go = React.useCallback(
      function (step) {
        setIndex(function (i) {
          return Math.min(Math.max(i + step, 0), Math.max(total - 1, 0));
        });
      },
      [total]
    );

    var decide = React.useCallback(
      function (verdict) {
        if (!patch) return;
        var id = patch.id;
        var current = id in verdicts ? verdicts[id] : original[id];
        if (verdict === "skipped" && current) {
          // a skip keeps the verdict the patch has
          if (autoAdvance) go(1);
          return;
        }
        setVerdicts(function (v) {
          var out = Object.assign({}, v);
          out[id] = verdict;
          return out;
        });
        if (verdict !== "skipped") {
          decided.current += 1;
          // In order, in the background: the reviewer moves on at once
          setPending(function (n) {
            return n + 1;
          });
          chain.current = chain.current
            .then(function () {
              return execute(datasetName, "set_review_verdict", {
                run_key: runKey,
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
      [patch, verdicts, original, runKey, datasetName, autoAdvance, go]
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
    if (!queue) return h("div", { style: styles.root }, "Loading the review queue...");

    var sourcePicker = h(
      "select",
      {
        value: queue.source,
        "aria-label": "Patches to review",
        "data-cy": "fixer-review-source",
        onChange: function (e) {
          picked.current = e.target.value;
          load(e.target.value);
        },
      },
      queue.sources.map(function (name) {
        return h(
          "option",
          { key: name, value: name },
          name === CURRENT_VIEW ? "The view open in the App" : "Saved view " + name
        );
      })
    );
    if (!runKey) {
      return h(
        "div",
        { style: styles.root, "data-cy": "fixer-review-panel" },
        h("div", { style: { marginBottom: 12 } }, sourcePicker),
        h("div", { "data-cy": "fixer-review-message" }, queue.message),
        h(
          "button",
          {
            style: Object.assign({}, styles.button, { marginTop: 12 }),
            onClick: function () {
              load(queue.source);
            },
          },
          "Reload"
        )
      );
    }

    // Done: the server's count when the queue opened, plus this session's
    // changes to patches whose verdict was known then
    var done = queue.done;
    Object.keys(verdicts).forEach(function (id) {
      if (verdicts[id] !== "skipped") {
        done += isDone(verdicts[id]) - isDone(original[id]);
      }
    });
    var verdict = patch
      ? patch.id in verdicts
        ? verdicts[patch.id]
        : original[patch.id]
      : null;

    var estimateText =
      "No precision estimate: run " + runKey + " has no review sample.";
    if (estimate) {
      estimateText =
        estimate.precision === null || estimate.precision === undefined
          ? "No estimate until a sampled patch is confirmed or rejected."
          : "Flag precision " +
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

    var body;
    if (!total) {
      body = h("div", null, "This view holds no patches.");
    } else if (!patch) {
      body = h("div", { style: styles.muted }, "Loading patch " + (index + 1) + "...");
    } else {
      body = h(
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
          ),
          estimate && !patch.sampled
            ? h(
                "div",
                { style: Object.assign({ marginTop: 8 }, styles.muted) },
                "Not in the review sample: its verdict is kept but not counted in the estimate."
              )
            : null
        ),
        h(
          "div",
          { style: { flex: "1 1 320px" } },
          h(Evidence, { patch: patch }),
          h(Examples, {
            patch: patch,
            examples: examples[patch.id],
            descriptor: descriptor,
          })
        )
      );
    }

    return h(
      "div",
      {
        style: styles.root,
        "data-cy": "fixer-review-panel",
        "data-pending": String(pending),
        "data-pages": String(Object.keys(rows).length),
        "data-relearned": String(relearned),
        "data-source": queue.source,
      },
      h(
        "div",
        { style: Object.assign({}, styles.row, { alignItems: "center" }) },
        sourcePicker,
        h("b", null, "Run " + runKey),
        h(
          "span",
          { "data-cy": "fixer-review-position" },
          total ? "Patch " + (index + 1) + " of " + total : ""
        ),
        h(
          "span",
          { "data-cy": "fixer-review-counts" },
          done + " done, " + (total - done) + " left"
        ),
        h("span", { "data-cy": "fixer-review-estimate" }, estimateText),
        pending ? h("span", { style: styles.muted }, "saving...") : null
      ),
      sinking.length
        ? h(
            "div",
            {
              style: Object.assign({ marginTop: 8 }, styles.muted),
              "data-cy": "fixer-review-sinking",
            },
            "Moved down after your verdicts: " +
              sinking
                .map(function (p) {
                  var further = p.weight > 0 ? num(1 / p.weight, 1) + "x" : "far";
                  return p.given + " \u2192 " + p.suggested + " (" + further + " further down)";
                })
                .join(", ")
          )
        : null,
      error ? h("div", { style: styles.error }, error) : null,
      body
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
