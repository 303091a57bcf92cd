// The EBR step screen: collects the entry in the shape of the step's form (values, equipment_id,
// materials_used, step_comment), flags values outside their limits as they are typed, asks the server to
// check equipment and lots as they are picked (GET entry-check: reads only), and before the signing dialog
// opens makes the operator correct an out-of-limit value or confirm it (a deviation follows).
(function () {
  'use strict';
  const root = document.getElementById('ebr');
  if (!root) return;
  let confirmed = false;

  function number(input) {
    const text = input.value.trim();
    return text === '' ? null : Number(text);
  }

  function data() {
    const values = [...root.querySelectorAll('.ebr-value')].map((input) => ({
      name: input.dataset.name, value: number(input) }));
    const materials = [];
    root.querySelectorAll('.ebr-material').forEach((row) => {
      const lot = row.querySelector('.ebr-lot').value;
      if (!lot) return;  // a material not consumed in this entry
      materials.push({ material: row.dataset.material, lot,
                       quantity: number(row.querySelector('.ebr-quantity')), unit: row.dataset.unit });
    });
    const equipment = document.getElementById('ebr-equipment');
    const comment = document.getElementById('ebr-comment').value;
    const out = { values, materials_used: materials };
    if (equipment) out.equipment_id = equipment.value || null;
    if (comment) out.step_comment = comment;
    return out;
  }

  function outside(input) {
    const value = number(input);
    if (value === null || Number.isNaN(value)) return false;
    const low = input.dataset.low === '' ? null : Number(input.dataset.low);
    const high = input.dataset.high === '' ? null : Number(input.dataset.high);
    return (low !== null && value < low) || (high !== null && value > high);
  }

  function flagLimits() {
    root.querySelectorAll('.ebr-value').forEach((input) => {
      const flag = document.getElementById(input.id + '-flag');
      const out = outside(input);
      input.setAttribute('aria-invalid', out ? 'true' : 'false');
      flag.textContent = out ? 'out of limits' : (number(input) === null ? '' : 'within limits');
      flag.className = 'ebr-flag ' + (out ? 'ebr-out' : 'ebr-in');
    });
  }

  async function check() {
    const url = root.dataset.checkUrl + '?data=' + encodeURIComponent(JSON.stringify(data()));
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (!response.ok) return;
    const result = await response.json();
    root.querySelectorAll('[data-error-for]').forEach((el) => {
      el.textContent = (result.errors || {})[el.dataset.errorFor] || '';
    });
    root.dataset.checked = result.ok ? 'ok' : 'refused';
  }

  root.addEventListener('input', () => { confirmed = false; flagLimits(); });
  root.addEventListener('change', () => { flagLimits(); check().catch(() => {}); });

  document.getElementById('ebr-correct').addEventListener('click', () => {
    document.getElementById('ebr-out-of-limit').hidden = true;
    const first = [...root.querySelectorAll('.ebr-value')].find(outside);
    if (first) first.focus();
  });
  document.getElementById('ebr-confirm').addEventListener('click', () => {
    confirmed = true;
    document.getElementById('ebr-out-of-limit').hidden = true;
    document.getElementById('complete-form').requestSubmit(document.getElementById('complete-button'));
  });

  window.GmpflowEbr = {
    data,
    /** False (and the choice shown) while a value is out of limits and not yet confirmed. */
    readyToSign() {
      const out = [...root.querySelectorAll('.ebr-value')].filter(outside);
      if (!out.length || confirmed) return true;
      document.getElementById('ebr-out-of-limit-list').textContent = out.map((input) =>
        `${input.dataset.name} = ${input.value} (limits ${input.dataset.low || '—'} – ${input.dataset.high || '—'})`
      ).join('; ');
      const panel = document.getElementById('ebr-out-of-limit');
      panel.hidden = false;
      document.getElementById('ebr-confirm').focus();
      return false;
    },
  };
  flagLimits();
}());
