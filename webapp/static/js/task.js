// The task page: renders the form-js form, sends its data to the server (which validates), shows the
// server's errors next to the fields, and opens the signing dialog when the step must be signed.
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('task-config').textContent);
  const host = document.getElementById('form');
  const completeForm = document.getElementById('complete-form');
  const dataField = document.getElementById('data-field');
  const dialog = document.getElementById('sign-dialog');
  let form = null;
  let sending = false;

  function fieldsByKey() {
    const byKey = {};
    if (!form) return byKey;
    for (const field of form.get('formFieldRegistry').getAll()) {
      if (field.key) byKey[field.key] = field;
    }
    return byKey;
  }

  function showServerErrors(errors) {
    const byKey = fieldsByKey();
    const shown = {};
    for (const [key, message] of Object.entries(errors || {})) {
      // a list of rows shows no message of its own: its errors stay in the list above the form
      if (byKey[key] && byKey[key].type !== 'dynamiclist') shown[byKey[key].id] = [message];
    }
    if (Object.keys(shown).length) form._setState({ errors: { ...form._getState().errors, ...shown } });
    // the list above the form repeats them for fields the form does not show
    document.querySelectorAll('#server-errors li').forEach((li) => {
      const field = byKey[li.dataset.field];
      if (field && field.type !== 'dynamiclist') li.classList.add('shown-at-field');
    });
    const list = document.getElementById('server-errors');
    if (list && !list.querySelector('li:not(.shown-at-field)')) list.hidden = true;
  }

  function currentData() {
    if (window.GmpflowEbr) return window.GmpflowEbr.data();  // the EBR step screen (ebr.js) builds it
    if (!form) return {};
    const result = form.submit();
    const data = { ...(result.data || {}) };
    // read-only, disabled and computed fields are shown, never sent: the server refuses them
    // (undeclared_field), as it refuses every key the form does not let a person set
    for (const [key, field] of Object.entries(fieldsByKey())) {
      if (field.type === 'expression' || field.readonly || field.disabled) delete data[key];
      // form-js draws an optional list with one blank row: a row left wholly blank was never entered,
      // and sending it would refuse the form for a row nobody wrote (its required cells are empty)
      if (field.type === 'dynamiclist' && Array.isArray(data[key])) data[key] = data[key].filter(hasEntry);
    }
    return data;
  }

  function hasEntry(row) {
    return Object.values(row || {}).some((v) => v !== null && v !== undefined && v !== '' &&
      !(Array.isArray(v) && !v.length));
  }

  function cellText(value) {
    if (value === true) return 'yes';
    if (value === false) return 'no';
    if (value === null || value === undefined || value === '') return '—';
    if (typeof value === 'object') return JSON.stringify(value);
    return String(value);
  }

  function fillSignedData(data) {
    const table = document.getElementById('sign-data');
    table.replaceChildren();
    const entries = Object.entries(data);
    if (!entries.length) {
      const row = table.insertRow();
      row.insertCell().textContent = 'No data.';
      return;
    }
    for (const [key, value] of entries) {
      const row = table.insertRow();
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = (config.labels && config.labels[key]) || key;
      row.appendChild(th);
      row.insertCell().textContent = cellText(value);
    }
  }

  function openDialog() {
    fillSignedData(currentData());
    dialog.showModal();
    const username = document.getElementById('sig-username');
    (username.value ? document.getElementById('sig-password') : username).focus();
  }

  completeForm.addEventListener('submit', (event) => {
    // four eyes: this user may not sign; the page says why and nothing is sent
    if (sending || config.fourEyes) { event.preventDefault(); return; }
    const data = currentData();
    dataField.value = JSON.stringify(data);
    if (config.signature && !(dialog.open && event.submitter && event.submitter.id === 'sign-submit')) {
      event.preventDefault();
      // an out-of-limit value is flagged before the dialog: correct it, or confirm it (a deviation follows)
      if (window.GmpflowEbr && !window.GmpflowEbr.readyToSign()) return;
      openDialog();
      return;
    }
    sending = true;  // a second click while the first is on its way sends nothing
    completeForm.querySelectorAll('button[type=submit]').forEach((b) => {
      b.setAttribute('aria-disabled', 'true');
      b.classList.add('busy');
    });
  });

  if (dialog) {
    document.getElementById('sign-cancel').addEventListener('click', () => dialog.close());
    // Enter in a field of the dialog signs (the form's default button is outside the modal dialog, inert)
    dialog.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' || !event.target.matches('input, select')) return;
      event.preventDefault();
      completeForm.requestSubmit(document.getElementById('sign-submit'));
    });
  }

  async function start() {
    if (config.form) {
      // no input debounce: what is on screen is what the submit sends
      form = new window.GmpflowForm.Form({ container: host, debounce: false });
      await form.importSchema(config.form, config.data || {});
      // form-js submits on Enter; the page's own button decides
      form.on('submit', () => {});
      // after the fields' own first validation (an effect after mounting), so the server's words win
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      showServerErrors(config.errors);
      // the first field the server refused, else the first field: the keyboard starts where the work is
      const first = host.querySelector('[aria-invalid=true]') || host.querySelector('input, textarea, select');
      if (first && !config.signError) first.focus();
    }
    if (config.signError && dialog) openDialog();
    document.body.dataset.formReady = 'true';
  }

  start().catch((error) => {
    host.textContent = 'The form could not be shown: ' + error.message;
  });
}());
