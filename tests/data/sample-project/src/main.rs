//! The sample project's program: it exists so that the manifest is complete.

fn main() {
    let mut buffer = itoa::Buffer::new();
    let words: smallvec::SmallVec<[&str; 4]> = smallvec::smallvec!["sample", buffer.format(3)];
    let pattern = regex::Regex::new(r"^\w+$").expect("a valid pattern");
    for word in &words {
        println!("{} {} {}", hex::encode(word), pattern.is_match(word), time::now().tm_year);
    }
}
