//! Reads a crate's sources into "module A names module B" edges.
//!
//! Every path that starts at `crate`, `super` or `self` (or at a child
//! module's name) is resolved to the deepest module it reaches, in `use`
//! trees, types, expressions, patterns and macro arguments alike. Comments
//! and doc text are not code, so they never make an edge.

use std::collections::BTreeSet;
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path below the crate root: `["gateway", "stdio"]`.
pub type ModPath = Vec<String>;

/// One file's source, with the module it defines.
pub struct Source {
    pub module: ModPath,
    pub file: String,
    pub text: String,
}

/// Where one module names another: the file and the line.
#[derive(Debug, Clone)]
pub struct Edge {
    pub from: ModPath,
    pub to: ModPath,
    pub file: String,
    pub line: usize,
}

/// Every `.rs` file under `src`, each with its module path
/// (`src/a/mod.rs` and `src/a.rs` are both module `a`).
pub fn read_tree(src: &Path) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap();
            let mut module: ModPath = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            sources.push(Source {
                module,
                file: format!("src/{}", relative.display()),
                text: std::fs::read_to_string(&path).unwrap(),
            });
        }
    }
    sources.sort_by(|a, b| a.file.cmp(&b.file));
    sources
}

/// Every edge between two different modules in `sources`. (`src/main.rs`
/// names the library by its crate name, not `crate`, so it adds none.)
pub fn edges(sources: &[Source]) -> Result<Vec<Edge>, String> {
    let mut modules: BTreeSet<ModPath> = sources.iter().map(|s| s.module.clone()).collect();
    let files: Vec<syn::File> = sources
        .iter()
        .map(|s| syn::parse_file(&s.text).map_err(|e| format!("{}: {e}", s.file)))
        .collect::<Result<_, _>>()?;
    for (source, file) in sources.iter().zip(&files) {
        inline_modules(&source.module, &file.items, &mut modules);
    }
    let mut found = Vec::new();
    for (source, file) in sources.iter().zip(&files) {
        let mut walker = Walker {
            here: source.module.clone(),
            modules: &modules,
            file: &source.file,
            found: &mut found,
        };
        walker.visit_file(file);
    }
    Ok(found)
}

fn inline_modules(parent: &ModPath, items: &[syn::Item], modules: &mut BTreeSet<ModPath>) {
    for item in items {
        if let syn::Item::Mod(syn::ItemMod {
            ident,
            content: Some((_, inner)),
            ..
        }) = item
        {
            let mut path = parent.clone();
            path.push(ident.to_string());
            modules.insert(path.clone());
            inline_modules(&path, inner, modules);
        }
    }
}

struct Walker<'a> {
    here: ModPath,
    modules: &'a BTreeSet<ModPath>,
    file: &'a str,
    found: &'a mut Vec<Edge>,
}

impl Walker<'_> {
    /// Records an edge for a path written in the current module, if it
    /// names another module.
    fn path(&mut self, segments: &[String], line: usize) {
        let Some(absolute) = self.resolve(segments) else {
            return;
        };
        // The deepest module the path reaches; the rest names an item.
        let Some(target) = (1..=absolute.len())
            .rev()
            .map(|n| absolute[..n].to_vec())
            .find(|prefix| self.modules.contains(prefix))
        else {
            return;
        };
        if target != self.here {
            self.found.push(Edge {
                from: self.here.clone(),
                to: target,
                file: self.file.to_owned(),
                line,
            });
        }
    }

    fn resolve(&self, segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        let mut base: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.here.clone(),
            "super" => {
                let mut base = self.here.clone();
                let mut rest = segments;
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                base.extend(rest.iter().cloned());
                return Some(base);
            }
            _ => {
                // A child module named without `self::` (2018 paths).
                let mut child = self.here.clone();
                child.push(first.clone());
                if !self.modules.contains(&child) {
                    return None;
                }
                self.here.clone()
            }
        };
        let skip = usize::from(matches!(first.as_str(), "crate" | "self"));
        base.extend(segments[skip..].iter().cloned());
        Some(base)
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let line = n.ident.span().start().line;
                prefix.push(n.ident.to_string());
                self.path(&prefix.clone(), line);
                prefix.pop();
            }
            syn::UseTree::Rename(r) => {
                let line = r.ident.span().start().line;
                prefix.push(r.ident.to_string());
                self.path(&prefix.clone(), line);
                prefix.pop();
            }
            syn::UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                self.path(&prefix.clone(), line);
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// Paths inside macro arguments: `crate :: a :: b` token runs.
    fn tokens(&mut self, stream: TokenStream) {
        let trees: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < trees.len() {
            match &trees[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(ident)
                    if matches!(ident.to_string().as_str(), "crate" | "super" | "self") =>
                {
                    let line = ident.span().start().line;
                    let mut segments = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (trees.get(j), trees.get(j + 1), trees.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        segments.push(next.to_string());
                        j += 3;
                    }
                    if segments.len() > 1 {
                        self.path(&segments, line);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Walker<'_> {
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if m.content.is_some() {
            self.here.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.here.pop();
        }
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &u.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            let line = path
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            self.path(&segments, line);
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}
