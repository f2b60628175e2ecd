// Live updates for the web view: new alerts prepend to the feed, the health strip refreshes.
// Rows arrive rendered and escaped by the server; this file only places them.
(function () {
  "use strict";
  var feed = document.getElementById("feed");
  var health = document.getElementById("health");
  var filters = document.querySelectorAll("input[name='level-filter']");
  var MAX_ROWS = 200;

  function wanted() {
    var levels = {};
    filters.forEach(function (box) { levels[box.value] = box.checked; });
    return levels;
  }

  function applyFilter(row, levels) {
    if (row.dataset.level) { row.hidden = levels[row.dataset.level] === false; }
  }

  filters.forEach(function (box) {
    box.addEventListener("change", function () {
      var levels = wanted();
      feed.querySelectorAll("li").forEach(function (row) { applyFilter(row, levels); });
    });
  });

  if (!window.EventSource) { return; }
  var url = "/events?alerts=0";
  if (feed) {
    url = "/events?after=" + encodeURIComponent(feed.dataset.lastId || "");
  }
  var source = new EventSource(url);

  source.addEventListener("alert", function (event) {
    if (!feed) { return; }
    var holder = document.createElement("template");
    holder.innerHTML = event.data;
    var row = holder.content.firstElementChild;
    if (!row) { return; }
    applyFilter(row, wanted());
    var empty = feed.querySelector("li.empty");
    if (empty) { empty.remove(); }
    feed.prepend(row);
    while (feed.children.length > MAX_ROWS) { feed.lastElementChild.remove(); }
  });

  source.addEventListener("health", function (event) {
    if (health) { health.innerHTML = event.data; }
  });
})();
