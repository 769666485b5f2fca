# session-server 페이지, 한국어. 여기 있는 모든 메시지는 ../en-US/main.ftl 에 같은 이름으로 있습니다.

## 레이아웃
skip-to-content = 본문으로 건너뛰기
nav-label = 계정
nav-signed-in = 로그인한 사용자:
nav-login = 로그인
nav-register = 회원가입
footer-text = 세션은 서버에 저장됩니다. 브라우저는 서명된 무작위 ID만 가지고 있습니다.
back-home = 홈으로 돌아가기

## 홈
home-title = 홈
home-hello = 안녕하세요,
home-visits-before = 이 세션에서 이 페이지를
home-visits-after = 번 열었습니다.
home-guest-title = 안녕하세요, 손님
home-guest-text = 로그인하지 않았습니다.
home-guest-register = 또는 회원가입
learn-title = 이 사이트에서 세션 살펴보기
learn-step-login = 회원가입하고 로그인하세요. 그러면 서버가 이 세션에 대해 저장한 내용이 페이지에 나타납니다.
learn-step-cookie = 브라우저의 개발자 도구를 열어 보세요. 쿠키에는 알아볼 수 없는 서명된 ID만 들어 있고, 페이지의 스크립트는 이 쿠키를 읽을 수 없습니다(HttpOnly).
learn-step-wait = 아무 요청 없이 { $seconds }초를 기다린 뒤 새로고침하면 세션이 끝나 로그아웃됩니다.
learn-step-close-browser = 브라우저를 닫았다가 다시 열면 쿠키가 브라우저와 함께 사라졌으므로 로그아웃됩니다.
learn-step-close-permanent = 브라우저를 닫았다가 다시 열어도 이 서버의 쿠키는 영구 쿠키이므로 세션이 끝날 때까지 로그인이 유지됩니다.

## 세션 패널
panel-title = 나의 세션
panel-countdown-label = 남은 시간
panel-countdown-static = 세션은 { $time }에 끝납니다.
panel-countdown-hint = 카운트다운이 0이 된 뒤 새로고침하면 로그아웃됩니다. 요청할 때마다 처음부터 다시 셉니다.
panel-countdown-ended = 세션이 끝났습니다. 새로고침하면 로그아웃됩니다.
panel-started = 시작
panel-unknown = 알 수 없음
panel-ends = 종료
panel-ends-idle = (마지막 요청 후 { $seconds }초)
panel-ends-change = (세션이 마지막으로 바뀐 뒤 { $seconds }초)
panel-cookie = 쿠키
panel-cookie-permanent = 영구 쿠키: Max-Age가 { $seconds }초이며 브라우저를 닫아도 남습니다.
panel-cookie-browser = 브라우저 세션 쿠키: 만료 날짜가 없어서 브라우저를 닫으면 사라집니다.
panel-cookie-name = 쿠키 이름과 속성
panel-cookie-flags = 쿠키 속성
panel-cookie-not-secure = Secure 아님 (HTTP로도 전송)
panel-cookie-httponly = HttpOnly: 페이지의 스크립트는 이 쿠키를 읽을 수 없습니다.
panel-cookie-value = 쿠키 값
panel-cookie-value-id = 서명된 무작위 ID일 뿐입니다. 아래의 내용은 모두 서버에만 있습니다.
panel-cookie-value-data = 세션 자체를 서버의 키로 암호화한 값입니다("cookie" 방식).
panel-store = 저장소 종류
panel-where = 저장 위치
panel-place-file = 세션 폴더의 파일:
panel-place-memory = 이 서버 프로세스의 메모리 (재시작하면 사라짐)
panel-place-redis = Redis 키:
panel-place-memcached = memcached 키:
panel-place-sqlite = SQLite sessions 테이블의 행:
panel-place-postgres = PostgreSQL { $table } 테이블의 행:
panel-place-cookie = 쿠키 자체
panel-data-title = 서버가 저장한 내용
panel-data-hint = 서버에 저장된 이 세션의 데이터입니다. CSRF 토큰은 가려서 보여 주며, 비밀번호는 절대 저장하지 않습니다.

## 양식
field-user-id = 아이디
field-user-id-hint = 영문자, 숫자, '.', '_', '-' 로 64자까지.
field-name = 이름
field-password = 비밀번호
field-password-hint = { $min }자 이상.
field-password-again = 비밀번호 확인
login-title = 로그인
login-button = 로그인
login-no-account = 아직 계정이 없나요?
login-aside-title = 로그인하면 일어나는 일
login-aside-text = 서버는 비밀번호를 저장된 bcrypt 해시와 비교한 뒤, 새 ID로 새 세션을 시작하고 그 ID만 서명해서 HttpOnly 쿠키로 보냅니다.
register-title = 회원가입
register-button = 회원가입
register-have-account = 이미 가입했나요?
logout-button = 로그아웃
logout-confirm-title = 로그아웃할까요?
logout-confirm-text = 이 링크는 다른 사이트에서 왔습니다. 정말 로그아웃하려는 경우에만 누르세요.
logout-confirm-back = 아니요, 홈으로 돌아가기

## 알림 메시지
flash-welcome-back = { $name }님, 다시 오신 것을 환영합니다.
flash-welcome-new = { $name }님, 환영합니다. 계정이 만들어졌습니다.
flash-id-rotated = 로그인할 때 세션 ID를 새로 바꿨습니다. 그래서 누군가 미리 심어 둔 ID(세션 고정 공격)는 쓸모가 없습니다.
flash-logged-out = 로그아웃했습니다.
flash-session-ended = 세션이 끝났습니다. 유효 시간보다 오래 사용하지 않았거나 서버에서 종료되었습니다. 다시 로그인하세요.
flash-invalid-login = 아이디 또는 비밀번호가 올바르지 않습니다.
flash-id-taken = 이미 사용 중인 아이디입니다. 다른 아이디를 고르세요.
problem-user-id = 아이디는 1~64자의 영문자, 숫자, '.', '_', '-' 로 이루어져야 하며, 영문자나 숫자가 하나 이상 있어야 합니다.
problem-name = 이름은 1~64자여야 하며, 보이지 않거나 글자 방향을 바꾸는 문자는 쓸 수 없습니다.
problem-password-short = 비밀번호는 { $min }자 이상이어야 합니다.
problem-password-long = 비밀번호는 { $max }바이트 이하여야 합니다.
problem-password-mismatch = 두 비밀번호가 일치하지 않습니다.

## 오류 페이지
notfound-title = 페이지를 찾을 수 없습니다
notfound-text = 이 주소에는 아무것도 없습니다.
error-400-title = 잘못된 요청
error-400-text = 요청을 이해할 수 없습니다.
error-404-title = 찾을 수 없음
error-404-text = 이 주소에는 아무것도 없습니다.
error-405-title = 허용되지 않는 방식
error-405-text = 이 주소는 그런 방식의 요청을 받지 않습니다.
error-413-title = 너무 큼
error-413-text = 보낸 양식이 이 사이트가 받는 크기보다 큽니다.
error-415-title = 지원하지 않는 양식
error-415-text = 양식은 application/x-www-form-urlencoded 로 보내야 합니다.
error-429-title = 시도 횟수 초과
error-429-text = 잠시 기다린 뒤 다시 시도하세요.
error-5xx-title = 사용할 수 없음
error-5xx-text = 지금은 사이트가 응답할 수 없습니다. 잠시 뒤 다시 시도하세요.
error-other-title = 요청 거부
error-other-text = 요청이 거부되었습니다.
error-too-big-session-title = 세션이 너무 큼
error-too-big-session-text = 이 변경을 저장하면 세션이 서버가 허용하는 크기를 넘기 때문에 저장하지 않았습니다.
error-store-title = 세션을 사용할 수 없음
error-store-text = 지금은 세션을 저장하거나 읽을 수 없습니다. 잠시 뒤 다시 시도하세요.
error-accounts-title = 계정을 확인할 수 없음
error-accounts-text = 지금은 계정을 확인할 수 없습니다. 잠시 뒤 다시 시도하세요.
error-csrf-title = 양식 거부
error-csrf-text = 이 양식은 만료되었거나 이 사이트에서 온 것이 아닙니다. 뒤로 가서 페이지를 새로고침한 뒤 다시 시도하세요.
throttle-logins-title = 로그인 실패가 너무 많음
throttle-address-title = 이 주소에서 시도가 너무 많음
throttle-text = { $title }. { $seconds }초 뒤({ $time } UTC)에 다시 시도하세요.

## Password change and busy logins
nav-password = 비밀번호 변경
password-title = 비밀번호 변경
field-current-password = 현재 비밀번호
field-new-password = 새 비밀번호
password-button = 비밀번호 변경
password-note = 이 브라우저는 새 세션 ID로 로그인 상태를 유지합니다. 계정의 다른 모든 세션(다른 브라우저, 도난당한 쿠키)은 다음 요청에서 끝납니다.
flash-password-changed = 비밀번호가 변경되었습니다. 계정의 다른 모든 세션이 끝났습니다.
flash-password-wrong = 현재 비밀번호가 틀렸습니다.
error-busy-title = 동시 로그인이 너무 많음
error-busy-text = 지금 서버가 너무 많은 비밀번호를 확인하고 있습니다. 잠시 뒤 다시 시도하세요.
error-408-title = 요청 시간 초과
error-408-text = 양식이 제시간에 도착하지 않았습니다. 다시 보내 주세요.
error-lock-title = 세션 사용 중
error-lock-text = 세션의 다른 요청이 아직 처리 중입니다. 잠시 뒤 다시 시도하세요.
panel-login-ends = 로그인 종료
panel-login-ends-hint = (사용 여부와 관계없이 로그인 후 absolute_lifetime이 지나면 끝납니다. 계정이 삭제되거나 비밀번호가 바뀌면 더 일찍 끝납니다)
