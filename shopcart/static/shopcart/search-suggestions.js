// The suggestion list under the header's search box: an ARIA combobox with a listbox popup
// (https://www.w3.org/WAI/ARIA/apg/patterns/combobox/). Progressive enhancement: without this script
// the box is a plain search form, and the search page works the same.
//
// Typing asks GET <data-suggest-url>?q=... once the shopper pauses (DEBOUNCE_MS), dropping answers to
// earlier keystrokes. Down/Up move through the products, Enter opens the highlighted one (with none
// highlighted the form is submitted as usual), Escape closes the list, then clears the box.
(function () {
  "use strict";

  var DEBOUNCE_MS = 200;
  var MIN_LENGTH = 2;

  function enhance(form) {
    var input = form.querySelector("input[type=search]");
    var url = form.getAttribute("data-suggest-url");
    if (!input || !url) return;

    var listbox = document.createElement("ul");
    listbox.id = "search-suggestions";
    listbox.className = "search-suggestions";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", "Suggested products");
    listbox.hidden = true;
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    form.appendChild(listbox);
    form.appendChild(status);

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", listbox.id);
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("autocomplete", "off");

    var timer = null;
    var controller = null;
    var active = -1;
    var options = [];

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      options.forEach(function (option, n) {
        option.setAttribute("aria-selected", n === index ? "true" : "false");
      });
      active = index;
      if (index >= 0) {
        input.setAttribute("aria-activedescendant", options[index].id);
        options[index].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function show(items) {
      listbox.textContent = "";
      options = items.map(function (item, n) {
        var option = document.createElement("li");
        option.id = "search-suggestion-" + n;
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.setAttribute("data-url", item.url);
        var name = document.createElement("span");
        name.className = "suggestion-name";
        name.textContent = item.name;
        var category = document.createElement("span");
        category.className = "suggestion-category muted";
        category.textContent = item.category;
        option.appendChild(name);
        option.appendChild(category);
        // mousedown, not click: the input's blur (which closes the list) comes before a click.
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          window.location.assign(item.url);
        });
        listbox.appendChild(option);
        return option;
      });
      active = -1;
      input.removeAttribute("aria-activedescendant");
      if (options.length) {
        listbox.hidden = false;
        input.setAttribute("aria-expanded", "true");
        status.textContent = options.length + (options.length === 1 ? " product" : " products") +
          " suggested; use the up and down arrows to choose.";
      } else {
        close();
        status.textContent = "";
      }
    }

    function fetchSuggestions() {
      var query = input.value.trim();
      if (controller) controller.abort();
      if (query.length < MIN_LENGTH) {
        show([]);
        return;
      }
      controller = new AbortController();
      var address = url + (url.indexOf("?") < 0 ? "?" : "&") + "q=" + encodeURIComponent(query);
      fetch(address, { headers: { Accept: "application/json" }, signal: controller.signal })
        .then(function (response) { return response.ok ? response.json() : { suggestions: [] }; })
        .then(function (body) {
          if (input.value.trim() === query) show(body.suggestions || []);
        })
        .catch(function () { /* aborted by a newer keystroke, or offline: the form still works */ });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(fetchSuggestions, DEBOUNCE_MS);
    });

    input.addEventListener("keydown", function (event) {
      var open = !listbox.hidden && options.length > 0;
      if (event.key === "ArrowDown") {
        if (!open) {
          fetchSuggestions();
          return;
        }
        event.preventDefault();
        highlight(active + 1 < options.length ? active + 1 : 0);
      } else if (event.key === "ArrowUp" && open) {
        event.preventDefault();
        highlight(active > 0 ? active - 1 : options.length - 1);
      } else if (event.key === "Enter" && open && active >= 0) {
        event.preventDefault();
        window.location.assign(options[active].getAttribute("data-url"));
      } else if (event.key === "Escape") {
        if (open) {
          event.preventDefault();
          close();
        } else if (input.value) {
          event.preventDefault();
          input.value = "";
        }
      }
    });

    input.addEventListener("blur", close);
  }

  document.querySelectorAll("form[data-suggest-url]").forEach(enhance);
})();
