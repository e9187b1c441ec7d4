/*
 * Progressive enhancement for the storefront. Every form works without this script;
 * with it, add-to-cart buttons update the cart without leaving the page, filter
 * selects apply themselves, and the checkout button cannot be pressed twice.
 */
(function () {
  "use strict";

  function showMessage(text, level) {
    var area = document.querySelector("[data-messages]");
    if (!area || !text) {
      return;
    }
    var message = document.createElement("p");
    message.className = "message message--" + (level || "info");
    message.setAttribute("role", level === "error" || level === "warning" ? "alert" : "status");
    message.textContent = text;
    area.replaceChildren(message);
  }

  function setCartCount(count) {
    if (typeof count !== "number") {
      return;
    }
    document.querySelectorAll("[data-cart-count]").forEach(function (element) {
      element.textContent = String(count);
    });
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function submitNormally(form) {
    // HTMLFormElement.submit() does not fire "submit" again, so this cannot loop.
    HTMLFormElement.prototype.submit.call(form);
  }

  function addToCart(form) {
    var button = form.querySelector("button[type=submit]");
    if (button) {
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    return fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken(form) },
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          throw new Error("not a cart answer");
        }
        return response.json();
      })
      .then(function (data) {
        setCartCount(data.cart_count);
        showMessage(data.message, data.level);
      })
      .catch(function () {
        submitNormally(form);
      })
      .finally(function () {
        if (button) {
          button.disabled = false;
          button.removeAttribute("aria-busy");
        }
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    if (form.classList.contains("add-to-cart-form") && window.fetch && window.FormData) {
      event.preventDefault();
      addToCart(form);
      return;
    }
    if (form.hasAttribute("data-submit-once")) {
      if (form.dataset.submitted) {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "true";
      form.querySelectorAll("button[type=submit]").forEach(function (button) {
        button.setAttribute("aria-busy", "true");
      });
    }
    if (form.hasAttribute("data-autosubmit")) {
      // Leave "Any" filters out of the address so links stay short and readable.
      form.querySelectorAll("select").forEach(function (select) {
        if (!select.value) {
          select.disabled = true;
        }
      });
    }
  });

  document.addEventListener("change", function (event) {
    var field = event.target;
    var form = field && field.form;
    if (form && form.hasAttribute("data-autosubmit") && field.tagName === "SELECT") {
      form.requestSubmit ? form.requestSubmit() : form.submit();
    }
  });

  // Returning with the back button may restore the page with disabled selects.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-autosubmit] select").forEach(function (select) {
      select.disabled = false;
    });
    document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
      delete form.dataset.submitted;
    });
  });
})();
