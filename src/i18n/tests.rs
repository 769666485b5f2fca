use super::*;

const EN: &str = include_str!("../../locales/en-US/main.ftl");
const KO: &str = include_str!("../../locales/ko-KR/main.ftl");

/// Whether `lang`'s own file has `id` and it formats with the arguments the code passes (a
/// message that needs any other argument fails here).
fn has(lang: Lang, id: &str) -> bool {
    let args: HashMap<&str, FluentValue> = [
        ("count", 2.into()),
        ("name", "x".into()),
        ("table", "x".into()),
        ("min", 8.into()),
        ("max", 72.into()),
        ("seconds", 30.into()),
        ("time", "00:00".into()),
        ("title", "x".into()),
    ]
    .into_iter()
    .collect();
    LOCALES
        .lookup_single_language(&lang.id(), id, Some(&args))
        .is_ok()
}

/// The message ids a Fluent file defines.
fn ids(ftl: &str) -> Vec<&str> {
    ftl.lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .filter_map(|l| l.split_once(" =").map(|(id, _)| id.trim()))
        .collect()
}

/// Every `"…"` literal in `text` that looks like a message id of one of `families`.
fn literals<'a>(text: &'a str, families: &[&str]) -> Vec<&'a str> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            families.iter().any(|f| s.starts_with(f))
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .collect()
}

#[test]
fn both_languages_have_the_same_messages() {
    let (en, ko) = (ids(EN), ids(KO));
    assert!(en.len() > 50, "parsed {} ids", en.len());
    for id in &en {
        assert!(ko.contains(id), "{id} is in English only");
        assert!(has(Lang::Ko, id), "{id} does not load in Korean");
    }
    for id in &ko {
        assert!(en.contains(id), "{id} is in Korean only");
        assert!(has(Lang::En, id), "{id} does not load in English");
    }
}

#[test]
fn every_message_the_code_and_templates_use_exists_in_both() {
    let mut used: Vec<String> = Vec::new();
    for template in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
        .expect("templates folder")
    {
        let text = std::fs::read_to_string(template.expect("entry").path()).expect("template");
        for marker in ["key=\"", "t[\""] {
            for part in text.split(marker).skip(1) {
                used.push(part.split('"').next().unwrap_or_default().to_owned());
            }
        }
    }
    assert!(used.len() > 40, "found {} uses in templates", used.len());
    let families = ["flash-", "problem-", "error-", "throttle-", "panel-place-"];
    for file in ["web/auth.rs", "web/errors.rs", "web/mod.rs", "web/panel.rs"] {
        let path = format!("{}/src/{file}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("source");
        for id in literals(&text, &families) {
            if id.starts_with("error-") && !id.ends_with("-title") && !id.ends_with("-text") {
                // An error page's prefix: its title and its text.
                used.push(format!("{id}-title"));
                used.push(format!("{id}-text"));
            } else {
                used.push(id.to_owned());
            }
        }
    }
    for id in &used {
        for lang in Lang::ALL {
            assert!(has(lang, id), "{id} is used but missing in {lang}");
        }
    }
}

#[test]
fn korean_is_korean() {
    for id in ["nav-login", "nav-register", "logout-button", "panel-title"] {
        let text = Lang::Ko.t(id);
        assert!(
            text.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c)),
            "{id}: {text}"
        );
        assert_ne!(text, Lang::En.t(id));
    }
    // The seeds' own words.
    for (id, word) in [
        ("nav-login", "로그인"),
        ("logout-button", "로그아웃"),
        ("nav-register", "회원가입"),
        ("field-password", "비밀번호"),
        ("panel-title", "세션"),
    ] {
        assert!(Lang::Ko.t(id).contains(word), "{id}");
    }
}

#[test]
fn arguments_are_filled_in_without_invisible_marks() {
    let text = Lang::En.t_with("flash-welcome-back", &[("name", "Alice".into())]);
    assert_eq!(text, "Welcome back, Alice.");
    let text = Lang::Ko.t_with("problem-password-short", &[("min", 8.into())]);
    assert_eq!(text, "비밀번호는 8자 이상이어야 합니다.");
    assert_eq!(
        Lang::En.t_with("home-visits-after", &[("count", 1.into())]),
        " time."
    );
    assert_eq!(
        Lang::En.t_with("home-visits-after", &[("count", 2.into())]),
        " times."
    );
}

#[test]
fn accept_language_picks_the_most_wanted_language_we_have() {
    let cases = [
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", Some(Lang::Ko)),
        ("en-US,en;q=0.9,ko;q=0.8", Some(Lang::En)),
        ("fr-FR,fr;q=0.9,ko;q=0.5,en;q=0.4", Some(Lang::Ko)),
        ("en;q=0.2, ko;q=0.9", Some(Lang::Ko)),
        ("ko;q=0, en", Some(Lang::En)),
        ("ko;q=0", None),
        ("fr, de", None),
        ("*", None),
        ("", None),
        (";;;,,,q=", None),
        ("KO_kr", Some(Lang::Ko)),
    ];
    for (header, want) in cases {
        assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
    }
}

#[test]
fn codes_parse_back() {
    for lang in Lang::ALL {
        assert_eq!(Lang::parse(lang.code()), Some(lang));
        assert_eq!(Lang::parse(lang.tag()), Some(lang));
        assert_eq!(lang.other().other(), lang);
    }
    assert_eq!(Lang::parse("ja"), None);
    assert_eq!(Lang::parse("<script>"), None);
}
