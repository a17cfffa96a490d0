use helpdesk::domain::{Language, Tier};
use helpdesk::kb::{starter, suggest};
fn main() {
    let kb = starter::knowledge_base();
    let text = std::fs::read_to_string("tests/kb/requests.tsv").unwrap();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        let lang = if f[0] == "fr" {
            Language::Fr
        } else {
            Language::En
        };
        let body = f[3].replace("\\n", "\n");
        let found = suggest::find(&kb, f[2], &body, lang);
        let c = suggest::choose(&found, Tier::L1FrontLine, &Default::default());
        let top: Vec<String> = c
            .customer
            .iter()
            .map(|h| format!("{}:{:.1}", h.article.id, h.score))
            .collect();
        let ok = if f[1] == "-" {
            c.customer.is_empty()
        } else {
            c.customer.iter().any(|h| h.article.id.as_str() == f[1])
        };
        println!(
            "{}\t{}\t{:?}\t{}\t{}",
            if ok { "ok" } else { "BAD" },
            f[1],
            found.request,
            top.join(" "),
            f[2]
        );
    }
}
