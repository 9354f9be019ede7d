// qikflow console: the overview panel refreshes itself; "select all" ticks a page of
// dead letters. Everything else is plain HTML forms and links.
(function () {
  "use strict";
  const panel = document.getElementById("panel");
  if (panel) {
    const every = Number(panel.dataset.every) || 5000;
    const refresh = async () => {
      try {
        const answer = await fetch(panel.dataset.refresh, { credentials: "same-origin" });
        if (answer.ok) {
          panel.innerHTML = await answer.text();
          panel.classList.remove("stale");
        } else {
          panel.classList.add("stale");
        }
      } catch (error) {
        panel.classList.add("stale");
      }
      window.setTimeout(refresh, every);
    };
    window.setTimeout(refresh, every);
  }
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      document.querySelectorAll("input[name=refs]").forEach((box) => { box.checked = all.checked; });
    });
  }
})();
