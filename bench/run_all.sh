#!/usr/bin/env bash
# Reproduces every table and plot of BENCHMARKS.md (about 5.5 hours on a
# 2-core CPU; `pip install -e ".[bench]"` first for cleanlab).
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results/camvid-f4
camvid=(--factor 4 --epochs 12 --lr 5e-3 --out "$out")
run=$out/runs/n468-folds5-epochs12-lr0.005-bs8-w16-seed0

seed_dir() {  # the output folder of a planting seed
    if [[ $1 == 0 ]]; then echo "$out"; else echo "bench/results/camvid-f4-s$1"; fi
}
# quarter resolution (the main tables), 30 epochs, half resolution
for options in "${camvid[*]}" "--factor 4 --epochs 30 --lr 5e-3 --out $out" \
    "--factor 2 --epochs 12 --lr 5e-3 --out bench/results/camvid-f2"; do
    # shellcheck disable=SC2086  # the options are words
    python bench/camvid/run.py $options
    # shellcheck disable=SC2086
    python bench/camvid/evaluate.py $options --split train
done
# half resolution, held-out seed 3
half3=(--factor 2 --epochs 12 --lr 5e-3 --seed 3 --out bench/results/camvid-f2-s3)
python bench/camvid/run.py "${half3[@]}"
python bench/camvid/evaluate.py "${half3[@]}" --split train
# three more planting seeds of the main tables (seed 3: held out, no
# default was chosen on it)
for seed in 1 2 3; do
    options=(--factor 4 --epochs 12 --lr 5e-3 --seed "$seed"
        --out "$(seed_dir "$seed")")
    python bench/camvid/run.py "${options[@]}"
    python bench/camvid/evaluate.py "${options[@]}" --split train
done
# an independent model: the folds trained on the clean labels, four seeds
for seed in 0 1 2 3; do
    dir=$(seed_dir "$seed")
    options=(--factor 4 --epochs 12 --lr 5e-3 --seed "$seed"
        --train-labels clean --out "$dir")
    python bench/camvid/run.py "${options[@]}"
    python bench/camvid/evaluate.py "${options[@]}" --split train
done

# at CamVid's full 360x480: the runs above upsampled 4x
up=(--factor 4 --epochs 12 --lr 5e-3 --up 4)
for seed in 0 1 2 3; do
    for labels in clean noisy; do
        python bench/camvid/upsampled.py "${up[@]}" --seed "$seed" \
            --train-labels "$labels" --out "$(seed_dir "$seed")"
    done
done
for labels in clean noisy; do
    python bench/camvid/upsampled.py "${up[@]}" --train-labels "$labels" \
        --out "$out" --no-cleanlab --config spatial_reference=0
done
# The half-resolution check of the growing thresholds, and the choice of
# min_score (section "The reporting threshold").
half=(--factor 2 --epochs 12 --lr 5e-3 --out bench/results/camvid-f2)
for config in spatial_reference=0 \
    "spatial_reference=0 min_area=42 boundary_width=3" \
    min_score=0.1 min_score=0.05; do
    # shellcheck disable=SC2086  # the config is words
    python bench/camvid/upsampled.py "${half[@]}" --up 1 --no-cleanlab \
        --config $config
done
for seed in 0 1 2; do
    dir=$(seed_dir "$seed")
    for labels in noisy clean; do
        python bench/camvid/tune.py --factor 4 --epochs 12 --lr 5e-3 \
            --seed "$seed" --train-labels "$labels" --out "$dir" \
            --grid min_score=0.05,0.075,0.1
    done
done
for labels in clean noisy; do
    for score in 0.1 0.05; do
        python bench/camvid/upsampled.py "${up[@]}" --train-labels "$labels" \
            --out "$out" --no-cleanlab --config min_score=$score
    done
done
# the model's blur along the boundaries against the size rule
for seed in 0 1 2; do
    for factor in 1 4; do
        python bench/camvid/blur_width.py --factor 4 --epochs 12 --lr 5e-3 \
            --seed "$seed" --out "$(seed_dir "$seed")" --up "$factor"
    done
done
for factor in 1 4; do
    python bench/camvid/blur_width.py "${camvid[@]}" --train-labels clean \
        --up "$factor"
done
python bench/camvid/blur_width.py "${half[@]}"

for cores in 1 2; do
    python bench/bench_vs_cleanlab_speed.py --sizes 100 1000 --cores "$cores" \
        --run-dir "$run"
done | tee bench/results/speed-camvid.jsonl
for cores in 1 2; do
    python bench/bench_vs_cleanlab_speed.py --sizes 200 --stages \
        --cores "$cores" --run-dir "$run"
done | tee bench/results/stages-camvid.jsonl
python bench/bench_scoring.py --sizes 1000 2000 10000 \
    --cleanlab-sizes 50 100 200 400 500 | tee bench/results/scale-ade.jsonl
python bench/bench_synthetic_quality.py
python bench/bench_many_classes.py --accuracy 0.6 0.78 0.9 \
    | tee bench/results/many-classes.jsonl
python bench/bench_many_classes.py --accuracy 0.6 0.78 0.9 \
    --config min_score=0.1
python bench/bench_trained_demo.py --config min_score=0.1 \
    --config min_score=0.075
python bench/bench_models.py --images 32 --size 240 320

# native resolution (issue 23): the cells, the val table, every threshold
R=bench/results
python bench/camvid/inject.py --factor 1 --seed 0 --out $R/rw-a
python bench/realuse/inject_b.py --out $R/rw-b
python bench/realuse/inject_c.py --out $R/rw-c
python bench/realuse/model_probs.py --out $R/realuse
for labels in clean noisy; do
    python bench/camvid/probabilities.py --factor 1 --seed 0 --out $R/rw-a \
        --folds 2 --epochs 3 --lr 5e-3 --width 8 --train-labels "$labels"
done
runs=$R/rw-a/runs/n468-folds2-epochs3-lr0.005-bs8-w8-seed0
ln -sfn "$(realpath "$runs-clean/probs")" $R/realuse/probs/unet-clean
ln -sfn "$(realpath "$runs/probs")" $R/realuse/probs/unet-cv
# a model's four cells of a split ($split, val by default): the three
# injectors and the clean labels (further arguments go to evaluate.py)
cells() {
    local probs=$1
    shift
    for labels in rw-a rw-b rw-c; do
        python bench/realuse/evaluate.py --labels $R/$labels --probs "$probs" \
            --split "${split:-val}" "$@"
    done
    python bench/realuse/evaluate.py --labels $R/rw-a --clean --probs "$probs" \
        --split "${split:-val}" "$@"
}
for model in espnet unet-clean unet-cv; do
    cells $R/realuse/probs/$model
    # out of time order, and each image alone (BENCHMARKS "Frames out of
    # time order")
    cells $R/realuse/probs/$model --no-cleanlab --shuffle 0 \
        --out $R/realuse/reports-shuffled
    cells $R/realuse/probs/$model --no-cleanlab --alone \
        --out $R/realuse/reports-alone
    # train too, alone and in time order (BENCHMARKS "Photos: the label's
    # doubt read finer where no frame checks the model")
    split=train cells $R/realuse/probs/$model --no-cleanlab --alone \
        --out $R/realuse/reports-alone-train
    split=train cells $R/realuse/probs/$model --no-cleanlab \
        --out $R/realuse/reports-train
done
python bench/bench_view_order.py --sizes 5000 20000 50000 --fiftyone 20000
python bench/realuse/review_page.py --labels $R/rw-a --clean \
    --probs $R/realuse/probs/espnet --split val --out $R/realuse/review-clean-16
python bench/realuse/config_ablation.py --split val --jobs 2 \
    --out $R/ablation
python bench/realuse/config_ablation.py --split train --jobs 2 \
    --out $R/ablation-train
# the models at other temperatures, and at the fitted ones
for model in espnet unet-clean; do
    for t in 0.5 2; do
        python bench/realuse/temperature.py --probs $R/realuse/probs/$model \
            --temperature $t --out $R/realuse/probs/$model-t$t
        cells $R/realuse/probs/$model-t$t
        cells $R/realuse/probs/$model-t$t --no-cleanlab --alone \
            --out $R/realuse/reports-alone
    done
done
for model in espnet unet-clean unet-cv; do
    for labels in rw-a/noisy rw-a/clean rw-b/noisy rw-c/noisy; do
        injector=${labels%%/*} kind=${labels##*/}
        fit=$R/realuse/probs/$model-fit-$injector-$kind
        python bench/realuse/temperature.py --probs $R/realuse/probs/$model \
            --fit $R/$labels --out "$fit"
        clean=()
        [ "$kind" = clean ] && clean=(--clean)
        python bench/realuse/evaluate.py --labels $R/$injector "${clean[@]}" \
            --probs "$fit" --split val
    done
done

python bench/camvid/show_misses.py "${camvid[@]}" --save bench/plots/misses_val.png \
    --images val/0016E5_08137 val/0016E5_08103 val/0016E5_08085
python bench/plots.py --report "$run/report-val.json" \
    --report "$run/report-train.json" \
    --scale bench/results/scale-ade.jsonl \
    --speed bench/results/speed-camvid.jsonl --out bench/plots
