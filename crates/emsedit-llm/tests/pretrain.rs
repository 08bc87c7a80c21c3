//! Pre-training, saving and the BPE trainer: the pieces `cargo xtask pretrain` is made of.

use std::path::PathBuf;

use emsedit_llm::bpe;
use emsedit_llm::config::Gpt2Config;
use emsedit_llm::pretrain::{PretrainConfig, sequence_batch};
use emsedit_llm::{CausalLm, LmTokenizer};
use emsedit_tensor::{Cpu, cpu, rng_lock, seed};

const TEXTS: [&str; 6] = [
    "The capital of Veltria is Orsk",
    "The capital of Dunmere is Paldor",
    "Dara Kesten works as a pilot",
    "Who founded Orskworks? Mira Tal",
    "nq question: what is the capital of veltria? Orsk",
    "Ünïcode  spaces\tand digits 1234 stay intact",
];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emsedit-pretrain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tiny_config(vocab: usize) -> Gpt2Config {
    Gpt2Config {
        vocab_size: vocab,
        n_positions: 64,
        n_embd: 32,
        n_layer: 2,
        n_head: 2,
        n_inner: None,
        activation_function: "gelu_new".into(),
        layer_norm_epsilon: 1e-5,
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: true,
    }
}

#[test]
fn bpe_is_deterministic_lossless_and_merges() {
    let a = bpe::train(&TEXTS, 300).unwrap();
    let b = bpe::train(&TEXTS, 300).unwrap();
    assert_eq!(a, b, "the same texts give the same tokenizer.json");
    let tok = LmTokenizer::from_json(std::path::Path::new("trained.json"), &a).unwrap();
    assert!(tok.vocab_size() <= 300 && tok.vocab_size() > 257);
    for text in TEXTS {
        let ids = tok.encode_prompt(text).unwrap();
        assert_eq!(tok.decode(&ids).unwrap(), text, "round trip of {text:?}");
        assert!(ids.len() < text.len(), "merges shorten {text:?}");
    }
    // A target is one leading-space pre-token: its ids continue the prompt's.
    let whole = tok.encode_prompt("The capital of Veltria is Orsk").unwrap();
    let mut split = tok.encode_prompt("The capital of Veltria is").unwrap();
    split.extend(tok.encode_target("Orsk").unwrap());
    assert_eq!(whole, split);
    assert!(
        bpe::train(&TEXTS, 100).is_err(),
        "too small a vocabulary is refused"
    );
}

#[test]
fn sequence_batches_label_every_next_token() {
    let b = sequence_batch(&[&[5, 6, 7], &[8, 9]]);
    assert_eq!((b.batch, b.time), (2, 3));
    assert_eq!(b.input_ids, vec![5, 6, 7, 8, 9, 0]);
    assert_eq!(b.attention_mask, vec![1, 1, 1, 1, 1, 0]);
    assert_eq!(b.labels, vec![6, 7, -100, 9, -100, -100]);
}

fn tiny_run(epochs: usize) -> (CausalLm<Cpu>, Vec<Vec<u32>>, Vec<f32>) {
    let json = bpe::train(&TEXTS, 300).unwrap();
    let tok = LmTokenizer::from_json(std::path::Path::new("trained.json"), &json).unwrap();
    let sequences: Vec<Vec<u32>> = TEXTS
        .iter()
        .map(|t| tok.encode_prompt(t).unwrap())
        .collect();
    let device = cpu();
    let _rng = rng_lock();
    seed::<Cpu>(&device, 3);
    let mut lm = CausalLm::<Cpu>::init_gpt2(tiny_config(tok.vocab_size()), &device);
    let config = PretrainConfig {
        epochs,
        batch_size: 3,
        lr: 1e-2,
        warmup: 5,
        seed: 1,
        ..PretrainConfig::default()
    };
    let mut losses = Vec::new();
    lm.pretrain(&sequences, &config, &mut |p| losses.push(p.loss))
        .unwrap();
    (lm, sequences, losses)
}

#[test]
fn pretraining_memorizes_and_is_reproducible() {
    let (lm, sequences, losses) = tiny_run(60);
    assert_eq!(losses.len(), 120);
    let rows: Vec<&[u32]> = sequences.iter().map(Vec::as_slice).collect();
    let batch = sequence_batch(&rows);
    let loss = lm.loss(&batch).unwrap();
    assert!(losses[0] > 5.0 && loss < 0.1, "loss {} → {loss}", losses[0]);
    let (again, _, losses_again) = tiny_run(60);
    assert_eq!(losses, losses_again, "same seeds, same run");
    assert_eq!(
        lm.forward(&batch).unwrap().into_data(),
        again.forward(&batch).unwrap().into_data()
    );
}

#[test]
fn saved_models_load_back_bit_for_bit() {
    let device = cpu();
    let _rng = rng_lock();
    seed::<Cpu>(&device, 5);
    let lm = CausalLm::<Cpu>::init_gpt2(tiny_config(300), &device);
    let dir = temp_dir("save");
    lm.save(&dir).unwrap();
    let loaded = CausalLm::<Cpu>::load(&dir, &device).unwrap();
    let batch = sequence_batch(&[&[1, 2, 3, 4], &[9, 8]]);
    assert_eq!(
        lm.forward(&batch).unwrap().into_data(),
        loaded.forward(&batch).unwrap().into_data()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn only_gpt2_can_be_saved_or_pretrained() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/llm/llama");
    let mut lm = CausalLm::<Cpu>::load(&dir, &cpu()).unwrap();
    let err = lm.save(&temp_dir("llama")).unwrap_err().to_string();
    assert!(err.contains("saving") && err.contains("llama"), "{err}");
    let err = lm
        .pretrain(&[vec![1, 2]], &PretrainConfig::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("pre-training"), "{err}");

    let device = cpu();
    let _rng = rng_lock();
    let mut gpt2 = CausalLm::<Cpu>::init_gpt2(tiny_config(300), &device);
    let err = gpt2
        .pretrain(
            &[vec![1, 2], vec![3; 65]],
            &PretrainConfig::default(),
            &mut |_| {},
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("sequence 1 has 65 tokens"), "{err}");
}
