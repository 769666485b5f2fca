//! Turning templates into responses: the embedded tera templates, the context every page shares
//! (flash messages, the logged-in user, the CSRF token), and the headers every page carries.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;

use super::flash::Flash;
use tera::{Context, Tera};

use crate::i18n::Lang;

mod fluent_fn;
mod translate;
pub use translate::Fixed;

/// The page templates, compiled into the binary so it runs from any folder.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    ("index.html", include_str!("../../templates/index.html")),
    ("login.html", include_str!("../../templates/login.html")),
    (
        "register.html",
        include_str!("../../templates/register.html"),
    ),
    ("404.html", include_str!("../../templates/404.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    (
        "password.html",
        include_str!("../../templates/password.html"),
    ),
    ("error.html", include_str!("../../templates/error.html")),
];

/// The stylesheet, served at `/static/style.css`.
pub const STYLESHEET: &str = include_str!("../../static/style.css");

/// The session panel's countdown, served at `/static/session.js` (a file, so that the
/// Content-Security-Policy can forbid inline script).
pub const SCRIPT: &str = include_str!("../../static/session.js");

/// Served when even the error template cannot be rendered: never an empty 500.
const LAST_RESORT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title></head>\
<body><h1>Something went wrong</h1><p>The page could not be shown. Please try again.</p></body></html>";

/// The compiled templates, one set per language (see [`translate`]).
pub struct Templates {
    languages: Vec<Translated>,
}

/// The templates of one language.
struct Translated {
    lang: Lang,
    tera: Tera,
    /// Every message the templates show without arguments (`t["key"]`), for the templates that
    /// still look one up at render time (`None`: none does).
    messages: Option<Context>,
}

/// What a page is rendered with: its language's values (see [`Templates::context`]) and the
/// page's own. Derefs to tera's [`Context`] to add values.
pub struct PageContext {
    lang: Lang,
    vars: Context,
}

impl PageContext {
    pub fn lang(&self) -> Lang {
        self.lang
    }
}

impl std::ops::Deref for PageContext {
    type Target = Context;
    fn deref(&self) -> &Context {
        &self.vars
    }
}

impl std::ops::DerefMut for PageContext {
    fn deref_mut(&mut self) -> &mut Context {
        &mut self.vars
    }
}

/// Why the templates cannot be used: found at start-up, never as a 500 later.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{file}: cannot read the template: {source}")]
    Read {
        file: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}{}: {message}", line.map(|l| format!(": line {l}")).unwrap_or_default())]
    Broken {
        file: std::path::PathBuf,
        line: Option<usize>,
        message: String,
    },
}

impl Templates {
    /// The embedded templates.
    pub fn new(sample: fn(Lang) -> Context) -> Result<Self, TemplateError> {
        Self::load(None, sample, &[])
    }

    /// The embedded templates, each replaced by its namesake in `dir` when there is one
    /// (`[server] templates_dir`). Every page is rendered once with sample values, so that a
    /// template that parses but fails to render (an unknown variable, a missing block) stops
    /// the start, naming its file. `fixed` are the variables that keep their value while the
    /// process runs: what [`translate`] may work out once.
    pub fn load(
        dir: Option<&std::path::Path>,
        sample: fn(Lang) -> Context,
        fixed: translate::Fixed,
    ) -> Result<Self, TemplateError> {
        Self::compile(dir, sample, Some(fixed))
    }

    /// [`Self::load`], translating per language (`fixed`) or not at all (`None`: every message
    /// looked up at render time, what the translation is checked against).
    fn compile(
        dir: Option<&std::path::Path>,
        sample: fn(Lang) -> Context,
        fixed: Option<translate::Fixed>,
    ) -> Result<Self, TemplateError> {
        let mut sources = Vec::with_capacity(TEMPLATES.len());
        for &(name, embedded) in TEMPLATES {
            let file = dir.map(|d| d.join(name)).filter(|f| f.exists());
            let text = match &file {
                Some(f) => std::fs::read_to_string(f).map_err(|source| TemplateError::Read {
                    file: f.clone(),
                    source,
                })?,
                None => embedded.to_owned(),
            };
            let shown =
                file.unwrap_or_else(|| std::path::PathBuf::from(format!("(embedded) {name}")));
            sources.push((name, text, shown));
        }
        let keys: Vec<&str> = sources
            .iter()
            .flat_map(|(_, text, _)| text.split("t[\"").skip(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        let fixed = fixed.filter(|fixed| {
            translate::translatable(sources.iter().map(|(_, text, _)| text.as_str()), fixed)
        });
        let mut languages = Vec::with_capacity(Lang::ALL.len());
        for lang in Lang::ALL {
            let mut tera = Tera::default();
            tera.autoescape_on(vec![".html"]);
            tera.register_function("fluent", fluent_fn::Fluent);
            let mut reads_messages = false;
            for (name, text, file) in &sources {
                let text = match fixed {
                    Some(fixed) => translate::translate(text, lang, name.ends_with(".html"), fixed),
                    None => text.clone(),
                };
                reads_messages |= translate::reads_messages(&text);
                // One at a time, so that a parse error names its own file.
                tera.add_raw_template(name, &text)
                    .map_err(|e| broken(file, &e))?;
            }
            // Inheritance is resolved once all are in.
            tera.build_inheritance_chains()
                .map_err(|e| broken(&sources[0].2, &e))?;
            let messages = reads_messages.then(|| {
                let table: serde_json::Map<String, serde_json::Value> = keys
                    .iter()
                    .map(|key| ((*key).to_owned(), lang.t(key).into()))
                    .collect();
                let mut ctx = Context::new();
                ctx.insert("t", &table);
                ctx
            });
            languages.push(Translated {
                lang,
                tera,
                messages,
            });
        }
        let templates = Self { languages };
        for lang in Lang::ALL {
            let ctx = templates.context_with(lang, sample(lang));
            for (name, _, file) in &sources {
                templates
                    .of(lang)
                    .tera
                    .render(name, &ctx)
                    .map_err(|e| broken(file, &e))?;
            }
        }
        Ok(templates)
    }

    fn of(&self, lang: Lang) -> &Translated {
        self.languages
            .iter()
            .find(|t| t.lang == lang)
            .unwrap_or(&self.languages[0])
    }

    /// An empty page context in `lang`.
    pub fn context(&self, lang: Lang) -> PageContext {
        self.context_with(lang, Context::new())
    }

    /// `vars` as a page context in `lang` (with the messages, for templates that look them up).
    pub fn context_with(&self, lang: Lang, mut vars: Context) -> PageContext {
        if let Some(messages) = &self.of(lang).messages {
            vars.extend(messages.clone());
        }
        PageContext { lang, vars }
    }

    /// A full HTML response; a template failure is logged and answered with a plain error page.
    pub fn page(&self, status: StatusCode, name: &str, ctx: &PageContext) -> HttpResponse {
        match self.of(ctx.lang).tera.render(name, ctx) {
            Ok(body) => html(status, body),
            Err(e) => {
                tracing::error!(template = name, error = ?e, "template failed to render");
                html(StatusCode::INTERNAL_SERVER_ERROR, LAST_RESORT.to_owned())
            }
        }
    }

    /// The generic error page for `status`, with a title and one sentence for a person, on
    /// `ctx` (the language and the header's values: see [`super::AppState::context`]).
    pub fn error_page(
        &self,
        mut ctx: PageContext,
        status: StatusCode,
        title: &str,
        message: &str,
    ) -> HttpResponse {
        ctx.insert("status", &status.as_u16());
        ctx.insert("title", title);
        ctx.insert("message", message);
        ctx.insert("flashes", &Vec::<Flash>::new());
        self.page(status, "error.html", &ctx)
    }
}

/// `e` as one line naming `file` and, for a syntax error, its line.
fn broken(file: &std::path::Path, e: &tera::Error) -> TemplateError {
    let mut chain = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = source {
        chain.push(err.to_string());
        source = err.source();
    }
    let detail = chain.join(": ");
    // pest writes the place as ` --> line:column`.
    let line = detail
        .split(" --> ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|l| l.trim().parse().ok());
    let message = detail
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-->") && !l.starts_with('|'))
        .filter(|l| !l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join(" ");
    TemplateError::Broken {
        file: file.to_owned(),
        line,
        message,
    }
}

fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ))
        .body(body)
}
