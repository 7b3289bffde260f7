// The login-form detector. It runs inside the page — through WebDriver's
// executeScript here, in a content script in a browser extension — and needs
// nothing but the DOM and the keyword lists (keywords.json).
//
// detectLoginForm(document, keywords) returns
//   { found, username, password, submit, insertAt, confidence, step, reason }
// where username, password and submit are elements (or null), insertAt is
// the element before which a one-click login control fits, and step is
// "password" (username and password together), "username" (the first page
// of a two-step login: username and a next button) or "none". When
// keywords.trace is an array, the candidate forms and submit controls are
// pushed to it with their scores, for working on the heuristics.
//
// How: every visible password field is a candidate; its form (or, without a
// <form>, the nearest container holding text fields and a button) is scored
// as a login form against registration, password change and checkout forms.
// Without a password field, a lone username/email field with a next button
// in a form that speaks of signing in is the first step of a two-step login.
// In the chosen form the username is the best-scored text field before the
// password, and the submit control the best-scored button after it.

/* eslint-disable no-unused-vars */
function detectLoginForm(doc, K) {
  'use strict'
  const win = doc.defaultView
  const lower = (s) => (s == null ? '' : String(s)).toLowerCase()
  const hasAny = (text, list) => list.some((k) => text.includes(k))
  const tokens = (text) => text.split(/[^\p{L}\p{N}]+/u).filter(Boolean)
  const hasWord = (text, words) => {
    const t = tokens(text)
    return words.some((w) => t.includes(w))
  }
  // Text fields a username can be typed into.
  const TEXTUAL = new Set(['', 'text', 'email', 'tel', 'number', 'url'])
  const isTextual = (el) => el.tagName === 'INPUT' && TEXTUAL.has(lower(el.getAttribute('type')).trim())

  function visible(el) {
    if (!el.isConnected) return false
    const st = win.getComputedStyle(el)
    if (st.display === 'none' || st.visibility === 'hidden' || st.visibility === 'collapse' || Number(st.opacity) === 0) return false
    const r = el.getBoundingClientRect()
    if (r.width < 4 || r.height < 4) return false
    // Off-screen honeypots and hidden-by-offset fields.
    if (r.right < 0 || r.bottom < 0 || r.left > win.innerWidth + 3000) return false
    for (let p = el.parentElement; p && p !== doc.body; p = p.parentElement) {
      const ps = win.getComputedStyle(p)
      if (ps.display === 'none' || ps.visibility === 'hidden' || Number(ps.opacity) === 0) return false
    }
    return true
  }

  // Shown at all, whatever its size: buttons drawn by missing CSS or
  // images can measure zero and still be the button.
  function displayed(el) {
    if (!el.isConnected || !el.getClientRects().length) return false
    const st = win.getComputedStyle(el)
    return st.visibility !== 'hidden' && st.visibility !== 'collapse' && Number(st.opacity) !== 0
  }

  function labelText(el) {
    let t = ''
    if (el.labels) for (const l of el.labels) t += ' ' + l.textContent
    const ids = el.getAttribute('aria-labelledby')
    if (ids) {
      for (const id of ids.split(/\s+/)) {
        const e = doc.getElementById(id)
        if (e) t += ' ' + e.textContent
      }
    }
    return t
  }

  // The text right before a field in its container: "E-mail:" in a table
  // cell or a <span> next to it.
  function precedingText(el) {
    let t = ''
    for (let n = el.previousSibling; n && t.length < 60; n = n.previousSibling) {
      t = (n.textContent || '') + ' ' + t
    }
    if (!t.trim() && el.parentElement) {
      const cell = el.closest('td, li, div, p')
      const prev = cell && cell.previousElementSibling
      if (prev) t = prev.textContent || ''
    }
    return t.slice(-80)
  }

  function describe(el) {
    const cls = typeof el.className === 'string' ? el.className : ''
    return lower([
      el.getAttribute('name'), el.id, cls, el.getAttribute('placeholder'), el.getAttribute('aria-label'),
      el.getAttribute('title'), el.getAttribute('autocomplete'), el.getAttribute('data-testid'),
      labelText(el), precedingText(el),
    ].join(' '))
  }

  function buttonText(el) {
    const cls = typeof el.className === 'string' ? el.className : ''
    return lower([
      el.tagName === 'INPUT' ? el.value : el.textContent, el.getAttribute('aria-label'), el.getAttribute('title'),
      el.getAttribute('alt'), el.getAttribute('name'), el.id, cls,
    ].join(' ')).replace(/\s+/g, ' ').trim()
  }

  // The form a field belongs to, or the smallest ancestor that holds more
  // than the field (other inputs or a button), up to a few levels.
  function scopeOf(el) {
    if (el.form) return el.form
    let scope = el.parentElement
    for (let i = 0; i < 6 && scope && scope !== doc.body; i++) {
      const n = scope.querySelectorAll('input, button, [role=button], a').length
      if (n >= 3 && scope.querySelector('button, input[type=submit], input[type=image], input[type=button], [role=button], a')) return scope
      scope = scope.parentElement
    }
    return scope || doc.body
  }

  // A page-wide <form> (ASP.NET WebForms wraps the whole page in one) says
  // nothing about the login box inside it: then the login's scope is the
  // smallest container around the password that also holds a text field
  // and a button.
  function localScope(el, scope) {
    for (let p = el.parentElement; p && p !== scope && p !== doc.body; p = p.parentElement) {
      const texts = Array.from(p.querySelectorAll('input')).filter((x) => isTextual(x) && visible(x))
      if (texts.length && p.querySelector('button, input[type=submit], input[type=image], input[type=button], a')) return p
    }
    return scope
  }

  // A field named "elements" or "id" shadows the form's own property of
  // that name, so forms are read through the prototype.
  const formElements = Object.getOwnPropertyDescriptor(HTMLFormElement.prototype, 'elements').get
  const attr = (el, name) => (el && el.getAttribute ? el.getAttribute(name) || '' : '')
  const controls = (scope) => {
    const inForm = scope instanceof HTMLFormElement ? Array.from(formElements.call(scope)) : Array.from(scope.querySelectorAll('input, button, select, textarea'))
    return inForm.filter((el) => el.tagName !== 'FIELDSET' && el.tagName !== 'OBJECT' && el.tagName !== 'OUTPUT')
  }

  const before = (a, b) => !!(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING)

  // Words around a form that say what it is for: its attributes, its text,
  // and the nearest heading before it.
  function formContext(scope) {
    let t = lower([attr(scope, 'action'), attr(scope, 'id'), attr(scope, 'class'), attr(scope, 'name'), attr(scope, 'aria-label')].join(' '))
    // A form inside <div id="loginForm"> (ExtJS panels, widgets) is named
    // by its containers.
    for (let p = scope.parentElement, i = 0; p && p !== doc.body && i < 3; p = p.parentElement, i++) t += ' ' + lower(attr(p, 'id') + ' ' + attr(p, 'class'))
    t += ' ' + lower((scope.innerText || scope.textContent || '').slice(0, 2000))
    let h = null
    for (let p = scope; p && !h && p !== doc.body; p = p.parentElement) {
      for (let s = p.previousElementSibling; s && !h; s = s.previousElementSibling) {
        if (/^H[1-4]$/.test(s.tagName)) h = s
        else if (s.querySelector) h = s.querySelector('h1, h2, h3, h4')
      }
    }
    t += '\u0000'
    if (h) t += lower(h.textContent)
    return t
  }

  // ctx is formContext(scope), whose heading part follows a NUL.
  function formOwnWords(scope, ctx) {
    let t = lower([attr(scope, 'action'), attr(scope, 'id'), attr(scope, 'class'), attr(scope, 'name'), attr(scope, 'aria-label')].join(' '))
    // What buttons and headings say, not their class names: a "Register"
    // button styled "signin-formbutton" is a sign-up.
    for (const b of scope.querySelectorAll('button, input[type=submit], input[type=image], legend, h1, h2, h3, h4')) {
      t += ' ' + lower([b.tagName === 'INPUT' ? b.value || attr(b, 'alt') : b.textContent, attr(b, 'aria-label'), attr(b, 'title')].join(' '))
    }
    const heading = ctx.slice(ctx.lastIndexOf('\u0000') + 1)
    return t + ' ' + heading
  }

  function scoreUsername(el, password) {
    const d = describe(el)
    const ac = lower(el.getAttribute('autocomplete'))
    const type = lower(el.getAttribute('type'))
    let s = 0
    if (/\b(username|email)\b/.test(ac)) s += 4
    if (type === 'email') s += 2
    if (hasAny(d, K.username)) s += 2
    if (hasWord(d, K.usernameWords)) s += 1
    if (hasAny(d, K.notUsername) || hasWord(d, K.notUsernameWords)) s -= 5
    if (type === 'number' || type === 'url') s -= 1
    if (password && !before(el, password)) s -= 3
    return s
  }

  // The buttons of scope: those shown, or for a form hidden as a whole (a
  // login pop-up) all of them.
  function submitCandidates(scope, hidden) {
    const sel = 'button, input[type=submit], input[type=image], input[type=button], [role=button], a'
    const own = Array.from(scope.querySelectorAll(sel))
    if (scope instanceof HTMLFormElement && attr(scope, 'id')) own.push(...doc.querySelectorAll(`[form="${CSS.escape(attr(scope, 'id'))}"]`))
    return hidden ? own : own.filter(displayed)
  }

  function scoreSubmit(el, field, scope) {
    const t = buttonText(el)
    const type = lower(el.getAttribute('type'))
    let s = 0
    if (el.tagName === 'INPUT' && (type === 'submit' || type === 'image')) s += 3
    if (el.tagName === 'BUTTON' && (type === '' || type === 'submit') && scope.tagName === 'FORM') s += 3
    if (el.tagName === 'A') s -= 2
    if (hasAny(t, K.submit) || hasWord(t, K.submit)) s += 2
    if (hasAny(t, K.notSubmit) || hasWord(t, K.notSubmitWords)) s -= 5
    if (t.length > 40) s -= 1
    if (field && before(field, el)) s += 2
    else if (field) s -= 3
    return s
  }

  function bestOf(items, score) {
    let best = null
    let bestScore = -Infinity
    for (const it of items) {
      const s = score(it)
      if (s > bestScore) {
        best = it
        bestScore = s
      }
    }
    return { item: best, score: bestScore }
  }

  // Pick the submit control after field: the best-scored, ties to the one
  // nearest after the field.
  // Some pages put the button just outside the form: then look a level or
  // two further out.
  function pickSubmit(scope, field, hidden) {
    let area = scope
    for (let i = 0; i < 3 && area; i++, area = area.parentElement) {
      const cands = submitCandidates(area, hidden).filter((el) => i === 0 || !before(el, field))
      const { item, score } = bestOf(cands, (el) => scoreSubmit(el, field, scope) - i)
      if (K.trace) K.trace.push({ area: attr(area, 'id') || area.tagName, candidates: cands.map((el) => [buttonText(el).slice(0, 40), scoreSubmit(el, field, scope) - i]) })
      if (score >= 1) return item
      if (area === doc.body) break
    }
    return null
  }

  // The page's own words about itself: its title and main headings.
  const pageWords = lower(doc.title + ' ' + Array.from(doc.querySelectorAll('h1, h2')).slice(0, 3).map((h) => h.textContent).join(' '))
  const pageSaysRegister = hasAny(pageWords, K.register) && !hasAny(pageWords, K.login)

  // A copy of the login form in a header, menu or pop-up ranks below the
  // page's main one.
  const SECONDARY = /(popup|pop-up|modal|overlay|dropdown|drop-down|tooltip|header|navbar|flyout|lightbox|dialog|mini|quick)/
  function secondary(scope) {
    for (let p = scope; p && p !== doc.body; p = p.parentElement) {
      if (SECONDARY.test(lower(attr(p, 'id') + ' ' + attr(p, 'class')))) return true
      if (p.tagName === 'HEADER' || p.tagName === 'NAV' || p.tagName === 'DIALOG') return true
    }
    // Or its buttons say so ("headerlogin", "loginPopupSubmit").
    return submitCandidates(scope).some((b) => SECONDARY.test(lower(attr(b, 'id') + ' ' + attr(b, 'class'))))
  }

  // A field's own words, without the text around it.
  const ownWords = (el) => lower([attr(el, 'name'), attr(el, 'id'), attr(el, 'placeholder'), attr(el, 'aria-label'), attr(el, 'autocomplete'), labelText(el)].join(' '))

  // The hint right after a field: "At least 8 characters" beside a
  // password says sign-up.
  function followingText(el) {
    let t = ''
    for (let n = el.nextSibling; n && t.length < 80; n = n.nextSibling) t += ' ' + (n.textContent || '')
    return lower(t.slice(0, 80))
  }

  function scoreLoginForm(scope, password, texts, passwords) {
    const ctx = formContext(scope)
    // autocomplete is weighed on its own below, not as words.
    const pd = lower([attr(password, 'name'), attr(password, 'id'), attr(password, 'placeholder'), attr(password, 'aria-label'), labelText(password)].join(' ')) + ' ' + followingText(password)
    let s = 0
    const why = []
    if (passwords.length === 1) s += 2
    else {
      s -= 3
      why.push(passwords.length + ' password fields')
    }
    const ac = lower(password.getAttribute('autocomplete'))
    if (ac.includes('current-password')) s += 3
    // Some sites mark login fields new-password to keep password managers
    // away; words such as "repeat" or "at least 8 characters" say more.
    if (ac.includes('new-password')) {
      s -= 2
      why.push('autocomplete new-password')
    }
    if (hasAny(pd, K.newPassword)) {
      s -= 4
      why.push('a new password')
    }
    // What the form says of itself (its attributes, heading and buttons)
    // outweighs the links around it ("Have an account? Sign in").
    const own = formOwnWords(scope, ctx)
    const login = hasAny(ctx, K.login)
    const register = hasAny(ctx, K.register)
    const ownLogin = hasAny(own, K.login)
    const ownRegister = hasAny(own, K.register)
    if (ownLogin) s += 2
    else if (login) s += 1
    if (ownRegister && !ownLogin) {
      s -= 3
      why.push('a form that says it registers')
    } else if (register && !login) {
      s -= 3
      why.push('registration words')
    }
    if (pageSaysRegister && !login) {
      s -= 2
      why.push('a registration page')
    }
    // One identity field is a login; name, e-mail and user name together
    // are a sign-up.
    const identities = texts.filter((el) => before(el, password) && scoreUsername(el, password) > -2)
    if (identities.length === 1) s += 1
    if (identities.length >= 2) {
      s -= identities.length >= 3 || !login ? 2 : 1
      why.push(identities.length + ' identity fields')
    }
    if (texts.length >= 4) {
      s -= 2
      why.push(texts.length + ' text fields')
    }
    // Inside a page-wide form, only the box around the password counts.
    const local = localScope(password, scope)
    // Card and address fields, not words around the form: login boxes on
    // checkout pages speak of shipping and billing too.
    if (controls(local).some((el) => el !== password && (isTextual(el) || el.tagName === 'SELECT') && hasAny(describe(el), K.checkout))) {
      s -= 2
      why.push('checkout fields')
    }
    // Name, birth date or post code after the password: a sign-up.
    const after = controls(local).filter((el) => !before(el, password) && el !== password && (isTextual(el) || el.tagName === 'SELECT') && visible(el))
    if (after.some((el) => hasAny(describe(el), K.signupField) || hasWord(describe(el), K.signupFieldWords))) {
      s -= 2
      why.push('sign-up fields after the password')
    }
    return { score: s, why, words: { login, register, ownLogin, ownRegister } }
  }

  const result = { found: false, username: null, password: null, submit: null, insertAt: null, confidence: 0, step: 'none', reason: '' }
  const squash = (s) => Math.round(100 / (1 + Math.exp(-(s - 1)))) / 100

  // One step: a password field, visible ones first; a login form hidden
  // in a menu or dialog still counts when no visible one is found.
  const isPassword = (el) => el.tagName === 'INPUT' && lower(el.getAttribute('type')) === 'password'
  const allPasswords = Array.from(doc.querySelectorAll('input[type=password i]')).filter((p) => !hasWord(ownWords(p), K.notPassword))
  const passwords = allPasswords.filter(visible)
  const MIN_SCORE = 3
  function bestForm(candidates, shown) {
    let best = null
    for (const p of candidates) {
      let scope = scopeOf(p)
      const show = (el) => !shown || visible(el)
      let fields = controls(scope).filter(show)
      if (fields.filter(isPassword).length > 2 || fields.filter(isTextual).length > 5) {
        scope = localScope(p, scope)
        fields = controls(scope).filter(show)
      }
      const ps = fields.filter(isPassword)
      const texts = fields.filter((el) => isTextual(el) && !hasAny(describe(el), K.notUsername))
      // In a form with two passwords (a password change, or a sign-up),
      // only the first can be a login.
      if (ps.length > 1 && ps[0] !== p) continue
      const f = scoreLoginForm(scope, p, texts, ps.length ? ps : [p])
      if (K.trace) K.trace.push({ form: attr(scope, 'id') || attr(scope, 'action') || scope.tagName, password: attr(p, 'name'), shown, score: f.score, why: f.why, words: f.words })
      // A copy in a header or pop-up loses ties with the page's main form,
      // and so does a form that also speaks of registering, but neither is
      // less of a login form for it.
      const rank = f.score - (secondary(scope) ? 1 : 0) - (f.words.ownRegister ? 0.5 : 0)
      if (!best || rank > best.rank) best = { scope, password: p, texts, score: f.score, rank, why: f.why }
    }
    return best
  }
  let best = bestForm(passwords, true)
  // A hidden login form counts only when the page shows no password field:
  // a shown sign-up form beside a hidden login pop-up is a sign-up page.
  if (!passwords.length) {
    const hidden = bestForm(allPasswords.filter((p) => !passwords.includes(p) && lower(p.getAttribute('type')) === 'password'), false)
    if (hidden && hidden.score >= MIN_SCORE) best = hidden
  }
  if (best && best.score >= MIN_SCORE) {
    const before_ = best.texts.filter((el) => before(el, best.password))
    const u = bestOf(before_.length ? before_ : best.texts, (el) => scoreUsername(el, best.password) + (el === before_[before_.length - 1] ? 2 : 0))
    result.found = true
    result.step = 'password'
    result.password = best.password
    result.username = u.item && u.score > -2 ? u.item : null
    result.submit = pickSubmit(best.scope, best.password, !visible(best.password))
    result.insertAt = result.submit || best.password
    result.confidence = squash(best.score + (result.username ? 1 : 0) + (result.submit ? 1 : 0))
    result.reason = 'password field in a form scored ' + best.score
    return result
  }
  if (best) result.reason = 'password fields, but not a login form (score ' + best.score + '): ' + best.why.join(', ')
  else if (allPasswords.length) result.reason = 'only hidden password fields, in no likely login form' 

  // Two steps: a lone username field, a button to go on, and sign-in words
  // in its own form (a page's title alone is not enough: newsletters and
  // search boxes sit on login pages too).
  if (!allPasswords.length) {
    let first = null
    for (const el of Array.from(doc.querySelectorAll('input')).filter((e) => isTextual(e) && visible(e))) {
      const scope = scopeOf(el)
      const texts = controls(scope).filter((x) => isTextual(x) && visible(x))
      if (texts.length > 2) continue
      const ctx = formContext(scope)
      if (!hasAny(ctx, K.login) || hasAny(ctx, K.register) || pageSaysRegister) continue
      const s = scoreUsername(el, null)
      if (s < 4) continue
      const submit = pickSubmit(scope, el)
      if (!submit || !(hasAny(buttonText(submit), K.submit) || hasWord(buttonText(submit), K.submit))) continue
      if (!first || s > first.score) first = { el, scope, submit, score: s }
    }
    if (first) {
      result.found = true
      result.step = 'username'
      result.username = first.el
      result.submit = first.submit
      result.insertAt = first.submit
      result.confidence = squash(first.score - 1)
      result.reason = 'first step of a two-step login'
      return result
    }
  }
  if (!result.reason) result.reason = 'no password field and no first login step'
  return result
}

if (typeof module !== 'undefined') module.exports = { detectLoginForm }
