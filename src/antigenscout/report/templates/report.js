/* antigenscout report: tooltips, candidate table (sort, filter), cross-highlighting.
   Vanilla JS, inlined; reads datasets from <script type="application/json" id="data-NAME">. */
(function () {
  "use strict";
  var cache = {};
  function dataset(name) {
    if (!(name in cache)) {
      var el = document.getElementById("data-" + name);
      cache[name] = el ? JSON.parse(el.textContent) : null;
    }
    return cache[name];
  }
  function fmt(v, kind) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v === "number" && !isFinite(v)) return "–";
    switch (kind) {
      case "pct": return (100 * v).toFixed(1) + " %";
      case "f2": return Number(v).toFixed(2);
      case "f3": return Number(v).toFixed(3);
      case "int": return Math.round(v).toLocaleString("en");
      case "bool": return v === true || v === "True" || v === 1 ? "yes" : "no";
      case "front": return v === 1 ? "\u2605" : String(v);
      default: return String(v);
    }
  }

  /* ---------------------------------------------------------------- tooltip */
  var tip = document.getElementById("tooltip");
  function tipLines(el) {
    if (el.hasAttribute("data-tip")) return el.getAttribute("data-tip").split("\n");
    var svg = el.closest("[data-set]");
    var d = svg && dataset(svg.getAttribute("data-set"));
    if (!d) return null;
    var i = +el.getAttribute("data-i");
    return d.tip.map(function (t, k) {
      var v = fmt(d.cols[t[1]][i], t[2]);
      return k === 0 ? v : t[0] + ": " + v;
    });
  }
  function place(e) {
    var pad = 14, w = tip.offsetWidth, h = tip.offsetHeight;
    var x = e.clientX + pad, y = e.clientY + pad;
    if (x + w > window.innerWidth - 4) x = e.clientX - w - pad;
    if (y + h > window.innerHeight - 4) y = e.clientY - h - pad;
    tip.style.left = Math.max(4, x) + "px";
    tip.style.top = Math.max(4, y) + "px";
  }
  function showTip(el, e) {
    var lines = tipLines(el);
    if (!lines) return;
    tip.textContent = "";
    lines.forEach(function (line, k) {
      var node = document.createElement(k === 0 ? "b" : "div");
      node.textContent = line;
      tip.appendChild(node);
    });
    tip.style.display = "block";
    place(e);
  }
  document.addEventListener("mouseover", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip], svg [data-i]");
    if (el) showTip(el, e);
  });
  document.addEventListener("mousemove", function (e) {
    if (tip.style.display === "block") place(e);
  });
  document.addEventListener("mouseout", function (e) {
    var el = e.target.closest && e.target.closest("[data-tip], svg [data-i]");
    if (el && !(e.relatedTarget && el.contains(e.relatedTarget))) tip.style.display = "none";
  });

  /* ------------------------------------------------------- highlight points */
  function highlight(set, i, on) {
    var svg = document.querySelector('svg[data-set="' + set + '"]');
    if (!svg) return;
    var c = svg.querySelector('[data-i="' + i + '"]');
    if (c) c.classList.toggle("hl", on);
  }
  document.addEventListener("click", function (e) {
    var c = e.target.closest && e.target.closest('svg[data-set] [data-i]');
    if (!c) return;
    var d = dataset(c.closest("svg").getAttribute("data-set"));
    var name = d && d.cols[d.key][+c.getAttribute("data-i")];
    var card = name && document.getElementById("explain-" + name);
    if (card) card.scrollIntoView({ behavior: "smooth", block: "start" });
  });

  /* ------------------------------------------------------- sortable tables */
  function buildTable(box) {
    var set = box.getAttribute("data-table");
    var d = dataset(set);
    if (!d) return;
    var n = d.cols[d.key].length;
    var order = [];
    for (var i = 0; i < n; i++) order.push(i);
    var state = { sort: null, dir: 1, query: "", filters: {}, limit: +box.getAttribute("data-limit") || 50 };
    var table = document.createElement("table");
    table.className = "sortable";
    var thead = table.createTHead().insertRow();
    d.table.forEach(function (c) {
      var th = document.createElement("th");
      th.textContent = c[1];
      if (c[3]) th.title = c[3];
      if (c[2] !== "text") th.className = "num";
      th.addEventListener("click", function () {
        if (state.sort === c[0]) state.dir = -state.dir; else { state.sort = c[0]; state.dir = c[2] === "text" ? 1 : -1; }
        table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        render();
      });
      thead.appendChild(th);
    });
    var tbody = table.createTBody();
    var controls = box.querySelector(".controls");
    var count = box.querySelector(".count");
    var more = box.querySelector(".showmore");
    var search = controls && controls.querySelector("input[type=search]");
    if (search) search.addEventListener("input", function () { state.query = search.value.trim().toLowerCase(); render(); });
    if (controls) controls.querySelectorAll("input[type=checkbox]").forEach(function (cb) {
      cb.addEventListener("change", function () { state.filters[cb.getAttribute("data-filter")] = cb.checked; render(); });
    });
    if (more) more.addEventListener("click", function () { state.limit = Infinity; render(); });
    box.querySelector(".tablewrap").appendChild(table);

    function cell(tr, c, i) {
      var v = d.cols[c[0]][i], td = tr.insertCell();
      if (c[2] === "covbar" || c[2] === "riskbar") {
        td.innerHTML = '<div class="barcell"><div class="bar ' + (c[2] === "covbar" ? "cov" : "risk") +
          '"><i></i></div><span></span></div>';
        var frac = (v === null || !isFinite(v)) ? 0 : Math.max(0, Math.min(1, v));
        td.querySelector("i").style.width = (100 * frac).toFixed(1) + "%";
        td.querySelector("span").textContent = fmt(v, c[2] === "covbar" ? "pct" : "f3");
      } else {
        td.textContent = fmt(v, c[2]);
        if (c[2] !== "text") td.className = "num";
      }
    }
    function keep(i) {
      for (var f in state.filters) {
        if (state.filters[f]) {
          var spec = d.filters[f];
          if (d.cols[spec[0]][i] !== spec[1]) return false;
        }
      }
      if (!state.query) return true;
      return d.search.some(function (col) {
        var v = d.cols[col][i];
        return v !== null && String(v).toLowerCase().indexOf(state.query) >= 0;
      });
    }
    function render() {
      var rows = order.filter(keep);
      if (state.sort) {
        var col = d.cols[state.sort], dir = state.dir;
        rows.sort(function (a, b) {
          var x = col[a], y = col[b];
          if (x === null) return 1;
          if (y === null) return -1;
          return (x < y ? -1 : x > y ? 1 : 0) * dir;
        });
      }
      tbody.textContent = "";
      rows.slice(0, state.limit).forEach(function (i) {
        var tr = tbody.insertRow();
        tr.setAttribute("data-row", i);
        d.table.forEach(function (c) { cell(tr, c, i); });
        tr.addEventListener("mouseenter", function () { highlight(set, i, true); });
        tr.addEventListener("mouseleave", function () { highlight(set, i, false); });
        tr.addEventListener("click", function () {
          var card = document.getElementById("explain-" + d.cols[d.key][i]);
          if (card) card.scrollIntoView({ behavior: "smooth", block: "start" });
        });
      });
      if (count) count.textContent = "showing " + Math.min(rows.length, state.limit) + " of " + rows.length +
        " matching (" + n + " in table" + (d.n_total > n ? ", " + d.n_total + " candidates in the run" : "") + ")";
      if (more) more.style.display = rows.length > state.limit ? "" : "none";
    }
    render();
  }
  document.querySelectorAll("[data-table]").forEach(buildTable);
  window.addEventListener("beforeprint", function () {
    tip.style.display = "none";
    document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  });
})();
