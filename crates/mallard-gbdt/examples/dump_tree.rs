// temporary debugging aid (to be removed)
use mallard_gbdt::{Dataset, Gbdt, GbdtParams};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tr = mallard_tables::read_csv(std::path::Path::new(&args[1]), &mallard_tables::CsvOptions { label_column: Some("y".into()), ..Default::default() }).unwrap();
    let nt: usize = args[2].parse().unwrap();
    let classes = tr.classes();
    let y = tr.label_indices(&classes).unwrap();
    let p = GbdtParams { n_estimators: nt, ..Default::default() };
    let m = Gbdt::fit(Dataset { x: &tr.values, n_features: tr.n_cols(), y: &y }, 2, &p, None).unwrap();
    let t = m.to_tensors();
    let init = t[0].2[0];
    let sizes = &t[1].2;
    let nodes = &t[2].2;
    let mut off = 0;
    for (ti, &s) in sizes.iter().enumerate() {
        let s = s as usize;
        let nd = &nodes[off * 8..(off + s) * 8];
        fn walk(nd: &[f32], i: usize, depth: usize, cols: &[String], add: f32) {
            let r = &nd[i * 8..i * 8 + 8];
            if r[0] < 0.0 {
                println!("{}leaf {:.6} n={}", "  ".repeat(depth), r[5] + add, r[6]);
            } else {
                println!("{}{} <= {} n={} dl={}", "  ".repeat(depth), cols[r[0] as usize], r[1], r[6], r[2]);
                walk(nd, r[3] as usize, depth + 1, cols, add);
                walk(nd, r[4] as usize, depth + 1, cols, add);
            }
        }
        walk(nd, 0, 0, &tr.columns, if ti == 0 { init } else { 0.0 });
        println!("---");
        off += s;
    }
}
