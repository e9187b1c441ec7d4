// Search by photo: a crop box the shopper drags over the preview of the chosen photo to
// search one garment. Without JavaScript the whole photo is searched. The box is sent as
// fractions of the photo (crop_x, crop_y, crop_width, crop_height).
(function () {
  "use strict";
  var form = document.querySelector(".photo-search__form");
  if (!form) return;
  var input = form.querySelector('input[type="file"]');
  var crop = form.querySelector("[data-crop]");
  var area = form.querySelector("[data-crop-area]");
  var image = form.querySelector("[data-crop-image]");
  var box = form.querySelector("[data-crop-box]");
  var fields = ["crop_x", "crop_y", "crop_width", "crop_height"].map(function (name) {
    return form.querySelector('input[name="' + name + '"]');
  });
  var MIN = 0.05;
  var start = null;

  function clear() {
    fields.forEach(function (field) { field.value = ""; });
    box.hidden = true;
  }

  function point(event) {
    var rect = area.getBoundingClientRect();
    return {
      x: Math.min(1, Math.max(0, (event.clientX - rect.left) / rect.width)),
      y: Math.min(1, Math.max(0, (event.clientY - rect.top) / rect.height)),
    };
  }

  function show(a, b) {
    var left = Math.min(a.x, b.x), top = Math.min(a.y, b.y);
    var width = Math.abs(a.x - b.x), height = Math.abs(a.y - b.y);
    box.style.left = left * 100 + "%";
    box.style.top = top * 100 + "%";
    box.style.width = width * 100 + "%";
    box.style.height = height * 100 + "%";
    box.hidden = false;
    return [left, top, width, height];
  }

  input.addEventListener("change", function () {
    clear();
    var file = input.files && input.files[0];
    if (!file) { crop.hidden = true; return; }
    image.src = URL.createObjectURL(file);
    crop.hidden = false;
  });

  area.addEventListener("pointerdown", function (event) {
    event.preventDefault();
    start = point(event);
    area.setPointerCapture(event.pointerId);
  });
  area.addEventListener("pointermove", function (event) {
    if (start) show(start, point(event));
  });
  area.addEventListener("pointerup", function (event) {
    if (!start) return;
    var values = show(start, point(event));
    start = null;
    if (values[2] < MIN || values[3] < MIN) { clear(); return; }  // a tap, not a box
    values.forEach(function (value, i) { fields[i].value = value.toFixed(4); });
  });
  form.querySelector("[data-crop-reset]").addEventListener("click", clear);
})();
