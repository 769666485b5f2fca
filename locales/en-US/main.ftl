# session-server pages, English. Every message here has its namesake in ../ko-KR/main.ftl.

## Layout
skip-to-content = Skip to the content
nav-label = Account
nav-signed-in = Signed in as
nav-login = Log in
nav-register = Register
footer-text = Sessions are kept on the server; the browser holds only a signed random id.
back-home = Back to the home page

## Home
home-title = Home
home-hello = Hello,
home-visits-before = This session has loaded this page
home-visits-after = { $count ->
    [one] {" "}time.
   *[other] {" "}times.
}
home-guest-title = Hello, guest
home-guest-text = You are not logged in.
home-guest-register = or create an account
learn-title = What this site shows you about sessions
learn-step-login = Register and log in. The page then shows what the server keeps for your session.
learn-step-cookie = Open the browser's developer tools: the cookie holds only an opaque signed id, and page scripts cannot read it (HttpOnly).
learn-step-wait = Wait { $seconds } seconds without a request and reload: the session has ended and you are logged out.
learn-step-close-browser = Close the browser and open it again: the cookie ended with the browser, so you are logged out.
learn-step-close-permanent = Close the browser and open it again: the cookie is permanent here, so you stay logged in until the session ends.

## Session panel
panel-title = Your session
panel-countdown-label = Time left
panel-countdown-static = The session ends at { $time }.
panel-countdown-hint = Refresh after the countdown reaches zero and you will be logged out. Each request starts it again.
panel-countdown-ended = The session has ended. Refresh and you will be logged out.
panel-started = Started
panel-unknown = unknown
panel-ends = Ends
panel-ends-idle = ({ $seconds } seconds after your last request)
panel-ends-change = ({ $seconds } seconds after the last change to the session)
panel-cookie = Cookie
panel-cookie-permanent = Permanent: it has a Max-Age of { $seconds } seconds and outlives the browser.
panel-cookie-browser = Ends with the browser: it has no expiry date, so closing the browser forgets it.
panel-cookie-name = Cookie name and flags
panel-cookie-flags = Cookie flags
panel-cookie-not-secure = not Secure (plain HTTP is allowed)
panel-cookie-httponly = HttpOnly: scripts in the page cannot read it.
panel-cookie-value = Cookie value
panel-cookie-value-id = Only a signed random id. Everything below stays on the server.
panel-cookie-value-data = The session itself, encrypted with the server's key (type "cookie").
panel-store = Store type
panel-where = Where it lives
panel-place-file = a file in the session folder:
panel-place-memory = this server process's memory (lost at restart)
panel-place-redis = Redis key:
panel-place-memcached = memcached key:
panel-place-sqlite = SQLite table sessions, row:
panel-place-postgres = PostgreSQL table { $table }, row:
panel-place-cookie = the cookie itself
panel-data-title = What the server stores
panel-data-hint = The session's data as the server keeps it. The CSRF token is masked; no password is ever stored.

## Forms
field-user-id = User id
field-user-id-hint = Letters, digits, '.', '_' or '-', up to 64.
field-name = Name
field-password = Password
field-password-hint = At least { $min } characters.
field-password-again = Password again
login-title = Log in
login-button = Log in
login-no-account = No account yet?
login-aside-title = What happens when you log in
login-aside-text = The server checks your password against its bcrypt hash, then starts a new session under a new id and sends only that id, signed, in an HttpOnly cookie.
register-title = Create an account
register-button = Register
register-have-account = Already registered?
logout-button = Log out
logout-confirm-title = Log out?
logout-confirm-text = This link came from outside this site. Log out only if you meant to.
logout-confirm-back = No, back to the home page

## Flash messages
flash-welcome-back = Welcome back, { $name }.
flash-welcome-new = Welcome, { $name }. Your account is ready.
flash-id-rotated = Your session id was changed at login, so an id someone planted before (session fixation) is worthless.
flash-logged-out = You have been logged out.
flash-session-ended = Your session has ended: it was unused for longer than its lifetime, or ended on the server. Log in again.
flash-invalid-login = Invalid user id or password.
flash-id-taken = That user id is already taken. Choose another one.
problem-user-id = User id must be 1 to 64 characters: letters, digits, '.', '_' or '-', with at least one letter or digit.
problem-name = Name must be 1 to 64 characters, with no invisible or direction-changing characters.
problem-password-short = Password must be at least { $min } characters.
problem-password-long = Password must be at most { $max } bytes.
problem-password-mismatch = The two passwords do not match.

## Error pages
notfound-title = Page not found
notfound-text = There is nothing at this address.
error-400-title = Bad request
error-400-text = The request could not be understood.
error-404-title = Not found
error-404-text = There is nothing at this address.
error-405-title = Method not allowed
error-405-text = This address does not accept that kind of request.
error-413-title = Too large
error-413-text = The form sent was larger than this site accepts.
error-415-title = Unsupported form
error-415-text = Forms must be sent as application/x-www-form-urlencoded.
error-429-title = Too many attempts
error-429-text = Please wait a moment before trying again.
error-5xx-title = Unavailable
error-5xx-text = The site cannot answer right now. Please try again in a moment.
error-other-title = Request refused
error-other-text = The request was refused.
error-too-big-session-title = Session too large
error-too-big-session-text = This change would make your session larger than the server keeps, so it was not saved.
error-store-title = Sessions unavailable
error-store-text = Your session cannot be saved or read right now. Please try again in a moment.
error-accounts-title = Accounts unavailable
error-accounts-text = Accounts cannot be checked right now. Please try again in a moment.
error-csrf-title = Form refused
error-csrf-text = This form has expired or did not come from this site. Go back, reload the page and try again.
throttle-logins-title = Too many failed logins
throttle-address-title = Too many attempts from your address
throttle-text = { $title }. Try again in { $seconds ->
    [one] 1 second
   *[other] { $seconds } seconds
} (at { $time } UTC).

## Password change and busy logins
nav-password = Change password
password-title = Change your password
field-current-password = Current password
field-new-password = New password
password-button = Change password
password-note = This browser stays logged in under a new session id; every other session of your account (another browser, a stolen cookie) ends at its next request.
flash-password-changed = Your password was changed. Every other session of your account has ended.
flash-password-wrong = The current password is wrong.
error-busy-title = Too many logins at once
error-busy-text = The server is checking too many passwords right now. Please try again in a moment.
error-408-title = Request timed out
error-408-text = The form did not arrive in time. Please send it again.
error-lock-title = Session busy
error-lock-text = Another request of your session is still running. Please try again in a moment.
panel-login-ends = Login ends
panel-login-ends-hint = (for good, however often you use it: absolute_lifetime after the login; a removed account or a changed password ends it sooner)
