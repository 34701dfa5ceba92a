/* ev_search.h: the offline side of echoview (library echoviewsearch): datasets and their loaders,
 * ultrasound augmentation, balanced batch sampling, the fast multi-threaded training executor,
 * optimisers, the training loop with checkpoints, and evaluation metrics and reports.
 *
 * Nothing online links this library (docs/ARCHITECTURE.md): the GStreamer element and the
 * daemon only read the model bundles it writes.
 */
#ifndef EV_SEARCH_H
#define EV_SEARCH_H

#include "ev_graph.h"

#include <stdbool.h>
#include <signal.h>
#include <stdint.h>

/* ---- datasets ------------------------------------------------------------------------------ */

typedef enum search_split {
    SEARCH_SPLIT_TRAIN = 0,
    SEARCH_SPLIT_VAL = 1,
    SEARCH_SPLIT_TEST = 2,
    SEARCH_SPLIT_COUNT = 3,
} search_split;

const char *search_split_name(int split); /* "train", "val", "test" */
int search_split_parse(const char *name); /* train|val|validation|test -> id, -1 unknown */

/* Default share of unreadable frames above which loading fails (5%): a few corrupt files in a
 * large export are skipped with a warning, a broken export stops training before it starts. */
#define SEARCH_DEFAULT_MAX_BAD_FRACTION 0.05

typedef struct search_split_record search_split_record;

typedef struct search_dataset_options {
    int width, height, channels;    /* model input: frames are stored at this size as uint8 */
    int num_classes;                /* 0: the 14 echo views */
    const char *const *class_names; /* NULL: ev_echo_views */
    uint64_t seed;                  /* patient-level split when the data has none */
    double max_bad_fraction;        /* < 0: SEARCH_DEFAULT_MAX_BAD_FRACTION */
    bool auto_roi;                  /* crop each frame to its detected sector (ev_detect_roi) */
    int threads;                    /* decoding threads, 0: all cores */
    int only_split;                 /* -1: keep all; else drop frames of other splits */
    bool quiet;                     /* no warnings on stderr (they are still counted) */
    /* Patient of a frame nothing else names (no patient column, no DICOM PatientID): the first
     * capture group (else the whole match) of this POSIX extended regex on the file's path
     * relative to the data root; a file it does not match is an error. NULL: none. */
    const char *patient_regex;
    int frames_per_clip; /* > 0: N evenly spaced frames of each multi-frame clip; 0: see step */
    int clip_frame_step; /* > 1: every k-th frame of a clip (from frame 0); 0 or 1: every frame */
    float video_fps;     /* > 0: video files sampled at this many frames per second; 0: all */
    /* The split the model was trained on (eval): applied as search_split_record_apply says,
     * before only_split; NULL: none (data without splits is split with seed). */
    const search_split_record *model_split;
    /* Frames without labels (echoview adapt): path is a folder whose frame files at any depth
     * are read (manifest.csv ignored), every one labelled 0 and split by seed as usual. */
    bool unlabelled;
} search_dataset_options;

typedef struct search_dataset {
    int count;
    int width, height, channels;
    uint8_t *pixels; /* count x channels x height x width, model-input size (ev_preprocess) */
    int32_t *labels;
    int8_t *split;    /* search_split */
    int32_t *patient; /* patient id (dense, 0..num_patients-1) */
    int8_t *quality;  /* 1..5, 0 when unknown */
    char **paths;
    int num_patients;
    int num_classes;
    char **class_names;
    int num_bad;          /* frames skipped because they could not be read */
    int num_listed;       /* frames listed before skipping */
    char **patient_names; /* num_patients, indexed by patient id */
    int32_t *clip;        /* clip id (dense, 0..num_clips-1): a DICOM file, a manifest clip */
    int32_t *frame;       /* frame index in its multi-frame file, -1 for a still image */
    char **clip_names;    /* num_clips: SOP Instance UID, the manifest's clip, or the path */
    int num_clips;
    int num_unidentified; /* frames without a patient ID (their patient is their path) */
    bool split_given;     /* the data names splits (else they were drawn by patient) */
    uint64_t data_hash;   /* FNV-1a 64 of the listed files (relative path, label, split, patient) */
} search_dataset;

/* The class list a dataset names when none is given: the class folders' names (DIR/<class>/,
 * or DIR/<split>/<class>/) or a manifest's labels, one per class by the loose label match (the
 * first spelling met), sorted in byte order of their UTF-8 (as `LC_ALL=C ls` lists them). Errors
 * name the path: a frame file outside any class folder, a manifest error. *empty_folder (when
 * not NULL; free it): the first class folder without frame files, NULL when none: the caller
 * refuses it, and checks the names (search_dataset_labels_check), when the list becomes the
 * classes. */
int search_dataset_labels(const char *path, char ***names, int *count, char **empty_folder,
                          ev_error *err);
/* Labels as a class list: each a valid class name (see --classes), 2 or more. */
int search_dataset_labels_check(const char *path, char *const *names, int count, ev_error *err);
/* path: a CSV manifest (path,label[,split][,patient][,quality][,roi_x,roi_y,roi_w,roi_h][,clip];
 * paths relative to the manifest), a folder containing manifest.csv, or an image folder
 * (DIR/CLASS/FILE or DIR/{train,val,test}/CLASS/FILE). Files are PNG, JPEG, PGM/PPM or DICOM
 * (single- or multi-frame: a clip whose frames are drawn as the options say, with the patient
 * and clip from its tags). A patient in two splits is an error naming it. Frames go through
 * ev_preprocess (crop, area resize, luma) to the model input and are kept as uint8. */
int search_dataset_load(const char *path, const search_dataset_options *options,
                        search_dataset **out, ev_error *err);
void search_dataset_free(search_dataset *ds);
/* A new dataset holding only the frames of the listed classes (ids into ds's classes), relabelled
 * 0..count-1 in the order given (the accuracy-vs-number-of-views study). */
int search_dataset_select_classes(const search_dataset *ds, const int *classes, int count,
                                  search_dataset **out, ev_error *err);
/* The split of a trained model (search/dataset_split.c): how it was made, the seed, the data's
 * hash and the patients of each split (sorted), as model.yaml's `training: split` holds it. */
struct search_split_record {
    bool drawn; /* drawn by patient from seed (the data had no split), else given by the data */
    uint64_t seed, data_hash;
    int count[SEARCH_SPLIT_COUNT];
    char **patients[SEARCH_SPLIT_COUNT];
};
int search_split_record_from_dataset(const search_dataset *ds, uint64_t seed,
                                     search_split_record *out, ev_error *err);
/* Appends `training: split: ...` to a bundle's model.yaml. */
int search_split_record_append_yaml(const char *model_yaml, const search_split_record *r,
                                    ev_error *err);
/* What else a bundle's `training:` section records about how it was made (provenance): */
typedef struct search_provenance {
    const char *command;       /* the command line */
    const char *data;          /* dataset path as given */
    const char *source_commit; /* git commit of the build */
    const char *init_from;     /* bundle fine-tuned from, NULL: none */
    uint64_t init_from_hash;   /* FNV-1a 64 of its weights.safetensors */
    const char *reinitialised; /* tensors of init_from not taken ("classifier.weight, ...") */
    const char *freeze;        /* the --freeze spec */
    int freeze_epochs;         /* --freeze holds for these first epochs; 0: the whole run */
    float lr;                  /* --lr */
    float lr_backbone;         /* --lr-backbone: the tensors taken from init_from; 0: --lr */
    bool auto_roi;             /* --auto-roi: the sector detected per frame (else the data's) */
    int epochs;                /* --epochs: the run's limit (early stopping may end it sooner) */
    int frames[SEARCH_SPLIT_COUNT];
    int best_epoch;
    uint64_t seed;
} search_provenance;
/* Appends `training:` with the provenance (NULL: none) and the split, one section. */
int search_training_record_append_yaml(const char *model_yaml, const search_provenance *p,
                                       const search_split_record *r, ev_error *err);
/* Reads it from a bundle (folder or model.yaml); *found false for a bundle without one. */
int search_split_record_load(const char *model_path, search_split_record *out, bool *found,
                             ev_error *err);
/* The recorded split of a patient, -1 when the record does not have it. */
int search_split_record_lookup(const search_split_record *r, const char *patient);
/* Checks or sets the splits of count frames (patients[i], splits[i]) of `data` against the
 * record; see search/dataset_split.c for the rules. Errors name a patient. */
int search_split_record_apply(const search_split_record *r, const char *const *patients,
                              int *splits, int count, bool split_given, uint64_t data_hash,
                              int only_split, const char *data, bool quiet, ev_error *err);
void search_split_record_free(search_split_record *r);

/* Class id for a label: exact, else ASCII case-insensitive with '/', '-', '_' and ' ' equal
 * (so a folder "Apical-LA_MV" names "Apical-LA/MV"). -1 when unknown. */
int search_class_lookup(char *const *names, int count, const char *label);
/* A class list of one's own ("A4C,PLAX,Other view"): comma-separated, spaces around names
 * dropped; 2..EV_MAX_CLASSES names of valid UTF-8 up to SEARCH_CLASS_NAME_MAX bytes, without
 * control characters, commas or double quotes, no two equal as search_class_lookup compares.
 * Errors name the class and what is wrong. Free with search_class_names_free. */
#define SEARCH_CLASS_NAME_MAX 64
int search_class_names_parse(const char *list, char ***names, int *count, ev_error *err);
void search_class_names_free(char **names, int count);

/* ---- augmentation -------------------------------------------------------------------------- */

typedef struct search_augment {
    bool enabled;
    float rotate_deg; /* uniform in +-rotate_deg (5) */
    float scale;      /* zoom uniform in 1 +- scale (0.08) */
    float translate;  /* shift uniform in +- translate x size (0.05) */
    float gain;       /* brightness gain uniform in 1 +- gain (0.15) */
    float contrast;   /* gamma uniform in 1 +- contrast (0.15) */
    float speckle;    /* multiplicative noise: x * (1 + speckle * N(0,1)) (0.08) */
    /* the transfer recipe (search_augment_transfer; all 0 in the defaults): what differs
     * between the phantom and real scanners, drawn per frame */
    float stretch;     /* aspect change uniform in 1 +- stretch */
    float fan_prob;    /* chance of a new sector outline: apex, opening angle and depth drawn */
    float depth_gain;  /* time-gain/attenuation slope: gain exp(a (y/h - 1/2)), a in +-depth_gain */
    float shadow_prob; /* chance of 1-2 dark radial stripes (rib shadows, dropout) */
    float blur_prob;   /* chance of a [w, 1-2w, w] blur (w up to 0.3), once or twice */
    float grain_max;   /* speckle grain in pixels drawn in 1..grain_max (coarser noise) */
    float haze;        /* additive clutter near the apex, up to haze levels (0..255) */
    float text_prob;   /* chance of 1-3 bright overlay boxes (text, markers) */
    float gain_field;  /* smooth local gain: exp of a 4 x 4 grid of N(0, gain_field), bilinear */
} search_augment;

/* The baseline recipe: small probe motion, gain, gamma and speckle. */
void search_augment_defaults(search_augment *a);
/* The transfer recipe (docs/SEARCH.md): the baseline widened (rotation 10 degrees, zoom
 * 0.78..1.22, shift 10%, gain 0.5..1.5, gamma 0.6..1.4, speckle 0.2) plus sector outline, depth
 * gain, a smooth local gain field, shadows, blur, speckle grain, haze and overlay boxes. */
void search_augment_transfer(search_augment *a);
/* Recipe by name: "basic" (search_augment_defaults), "transfer"; -1 for an unknown name. */
int search_augment_parse(const char *name, search_augment *a);
/* Frame (uint8, c x h x w) -> network input floats: optional augmentation drawn from rng, then
 * the sector normalisation normalize asks for (ev_normalize_sector, the engine's), then
 * x = (pixel * scale - mean) / std. Deterministic for a given rng state; never mirrors (views
 * are not mirror-symmetric), so the label stays right. */
void search_frame_to_input(const uint8_t *src, int w, int h, int c, const search_augment *aug,
                           uint64_t *rng, ev_normalize normalize, float scale, const float *mean,
                           const float *std, float *out);

/* ---- balanced online batch selection ------------------------------------------------------------ */

typedef struct search_sampler search_sampler;
/* indices: the training frames; labels of the whole dataset. Every class with frames gets
 * batch / classes frames per batch; the remainder goes to classes in rotation, so over `classes`
 * consecutive batches each class gets exactly the same number. Small classes are oversampled
 * (their shuffled list restarts when exhausted). */
int search_sampler_create(const int *indices, int count, const int32_t *labels, int num_classes,
                          int batch, search_sampler **out, ev_error *err);
/* Reseeds (deterministic per seed and epoch): the sampler's state is a function of them. */
void search_sampler_reset(search_sampler *s, uint64_t seed);
void search_sampler_next(search_sampler *s, int *batch_indices);
int search_sampler_classes_present(const search_sampler *s);
void search_sampler_free(search_sampler *s);

/* ---- fast training executor ------------------------------------------------------------------- */

/* Runs an ev_net's graph forward and backward with the fast kernels (train_kernels.h) and the
 * engine's thread pool splitting the batch. Uses the net's parameters and node output buffers;
 * keeps its own gradient buffers. For a network with gradients it lays out the node outputs
 * itself on the first forward, sharing the buffers of outputs backward does not read: after a
 * step only the logits and those outputs hold their values, and the reference ev_net_backward
 * must not run on it. Results do not depend on the thread count (fixed work chunks, reductions
 * in a fixed order). */
typedef struct search_exec search_exec;
int search_exec_create(ev_net *net, int threads, search_exec **out, ev_error *err);
void search_exec_free(search_exec *e);
int search_exec_forward(search_exec *e, const float *input, bool training, ev_error *err);
const float *search_exec_logits(const search_exec *e);
/* The weight a training forward gives the batch's statistics in each BN's running mean and
 * variance (default 0.1, PyTorch's); 1/b for the b-th batch makes them the average over
 * batches (search_adapt_bn). */
void search_exec_set_bn_momentum(search_exec *e, double momentum);
/* Fills parameter gradients (zeroed first, unlike ev_net_backward which accumulates). */
int search_exec_backward(search_exec *e, const int32_t *labels, float aux_weight, float *loss,
                         ev_error *err);
/* Makes ADD node `node` a weighted sum (the DARTS mixed op): forward sum_k weights[k] * x_k,
 * backward dx_k += weights[k] * dy and grad[k] = sum(dy . x_k) (zero when the loss does not reach
 * the node). weights and grad have one entry per input and stay owned by the caller, who may
 * change the weights between steps. */
int search_exec_set_weighted_add(search_exec *e, int node, const float *weights, double *grad,
                                 ev_error *err);
/* Makes CONCAT node `node` a channel selection: output channel o is channel map[o] of the
 * concatenation of its inputs (shape.c entries, injective; PC-DARTS's partial channels and
 * channel shuffle). map stays owned by the caller. */
int search_exec_set_channel_map(search_exec *e, int node, const int *map, ev_error *err);
/* Bytes an executor holds for training steps, all proportional to batch x input pixels except
 * the weight-gradient partials: every node's forward output (kept for backward), the node
 * gradients (buffers shared by nodes never live at once; allocated on the first backward, zero
 * for a network without gradients) and the rest (max-pool indices, per-chunk weight-gradient
 * partials and scratch). */
typedef struct search_exec_memory {
    size_t activations, gradients, other;
} search_exec_memory;
void search_exec_memory_use(const search_exec *e, search_exec_memory *m);
/* Name of the kernel set in use ("avx2" or "generic"); EV_CPU_ISA=generic forces the latter. */
const char *search_kernels_name(void);

/* ---- metrics ----------------------------------------------------------------------------------- */

typedef struct search_metrics {
    int num_classes;
    int64_t total, correct;
    double accuracy, macro_precision, macro_recall, macro_f1, weighted_f1;
    double precision[EV_MAX_CLASSES], recall[EV_MAX_CLASSES], f1[EV_MAX_CLASSES];
    int64_t support[EV_MAX_CLASSES];
    int classes_present; /* classes with support > 0 */
    int classes_scored;  /* classes with support > 0 or predicted (macro averages run over these) */
} search_metrics;

/* confusion: k x k counts, row = true class, column = predicted. Macro averages are over the
 * classes that occur in the ground truth or in the predictions (sklearn's labels = union of
 * y_true and y_pred), with 0 for a ratio whose denominator is 0 (zero_division=0): a class
 * predicted but absent has precision 0 and counts, so wrong predictions of it lower macro
 * precision instead of vanishing from it. */
void search_metrics_compute(const int64_t *confusion, int k, search_metrics *out);

/* ---- training ---------------------------------------------------------------------------------- */

typedef enum search_optimizer { SEARCH_OPT_ADAM = 0, SEARCH_OPT_SGD = 1 } search_optimizer;

typedef struct search_train_options {
    const char *data;    /* dataset path (search_dataset_load) */
    const char *out_dir; /* model bundle + checkpoint */
    const char *name;    /* bundle name (default: basename of out_dir) */
    ev_arch arch; /* EV_ARCH_DARTS (0), or a baseline: then genotype, layout and channels unused */
    ev_genotype genotype;
    char genotype_name[64];
    int num_cells;
    bool reduction[EV_MAX_CELLS];
    int init_channels;
    int size;   /* input width = height */
    int epochs; /* <= 800 */
    int batch;
    search_optimizer optimizer;
    float lr, weight_decay, momentum;
    bool cosine;
    float grad_clip;        /* 0: off */
    float auxiliary_weight; /* 0: no auxiliary head */
    float drop_path;
    int patience; /* epochs without validation-loss improvement; 0: off */
    int threads;
    uint64_t seed;
    bool resume;
    const char *log_path; /* JSONL per epoch; NULL: OUT/train.jsonl */
    bool augment;
    const char *augment_recipe; /* search_augment_parse name; NULL: "basic" */
    ev_normalize normalize;     /* written to the bundle; training applies it after augmenting */
    bool other_class;           /* a 15th class "other" after the 14 views (non-2D screens) */
    bool auto_roi;
    double max_bad_fraction;
    double train_fraction; /* use this share of the training patients (1: all) */
    int num_classes;       /* 0: 14 views */
    char **class_names;    /* NULL: ev_echo_views */
    int stop_after;        /* stop (as if interrupted) after this many epochs in this run; 0 */
    int max_steps;         /* cap steps per epoch (0: ceil(train frames / batch)) */
    int max_val_frames;    /* validate on an evenly spaced subset of this many frames (0: all) */
    bool quiet;
    search_dataset *dataset; /* optional preloaded dataset (not freed); data ignored then */
    /* Start from this bundle's weights (same network, any input size), copied by tensor name;
     * when its class list differs from this run's, the head (classifier.*, and the auxiliary
     * head's classifier) keeps its fresh initialisation, and the run says so. */
    const char *init_from;
    /* Parameters that get no updates (search_freeze_parse's form: "stem,cells:0-1,head");
     * NULL: none. Needs init_from. BN running statistics of frozen layers still follow the
     * batches, as in PyTorch (requires_grad False leaves buffers alone only in eval mode). */
    const char *freeze;
    /* > 0: the --freeze layers are frozen for the first freeze_epochs epochs only, then thawed
     * (trained at lr_backbone when given). 0: frozen for the whole run. */
    int freeze_epochs;
    /* > 0: the learning rate of every tensor taken from init_from (all but a re-initialised
     * head), usually below lr (discriminative fine-tuning); the cosine schedule scales both.
     * 0: lr for every tensor. Needs init_from. */
    float lr_backbone;
    const char *command_line;  /* recorded in model.yaml's training section; NULL: none */
    const char *source_commit; /* git commit of the build, recorded likewise; NULL: unknown */
    const char *patient_regex; /* search_dataset_options */
    int frames_per_clip, clip_frame_step;
    float video_fps;
    /* Set (by a signal handler) to stop: the step under way finishes, the checkpoint then
     * holds the run up to it (mid-epoch: the steps done, their sums and the drop-path state)
     * and --resume continues it exactly. NULL: never. */
    const volatile sig_atomic_t *interrupt;
} search_train_options;

void search_train_defaults(search_train_options *o);

typedef struct search_train_result {
    int epochs_run;
    int best_epoch;
    double best_val_loss, best_val_accuracy;
    double frames_per_second; /* training throughput (forward + backward + update) */
    bool early_stopped;
    bool interrupted;             /* stopped by options.interrupt */
    int stopped_epoch, stopped_step; /* interrupted in epoch (1-based) after this many steps */
    int steps_per_epoch;
} search_train_result;

int search_train(const search_train_options *o, search_train_result *result, ev_error *err);

/* Marks in frozen[num_params] the parameters of net a --freeze spec names: a comma list of
 * `stem`, `cells:K`, `cells:A-B` (cells counted from 0) and `head` (the classifier and the
 * auxiliary head). Errors name the item (unknown word, a cell the network does not have). */
int search_freeze_parse(const char *spec, const ev_net *net, bool *frozen, ev_error *err);

/* FNV-1a 64 of a file's bytes (a bundle's weights, recorded as init_from and adapt sources). */
int search_file_hash(const char *path, uint64_t *hash, ev_error *err);

/* ---- label-free adaptation (search/adapt.c) ---------------------------------------------------- */

typedef struct search_adapt_result {
    int frames;  /* frames whose statistics were used */
    int batches; /* of `batch` frames each (the last partial batch is left out when there are
                  * others: a short batch's statistics are noisier) */
    int bn_layers;
} search_adapt_result;

/* AdaBN (Li et al. 2016): the model's BatchNorm running statistics replaced by those of ds's
 * frames (labels ignored): every batch runs through the network in training mode (each BN
 * normalises by its batch's statistics) and the running mean and unbiased variance become the
 * average over batches of the batch statistics (PyTorch's momentum=None). Every other tensor
 * is copied unchanged. Writes the bundle to out_dir: model.yaml (the source's training section
 * kept, with `adapted:` added; calibration dropped, it was fitted to the old statistics) and
 * weights.safetensors. */
int search_adapt_bn(const char *model_path, const search_dataset *ds, int batch, int threads,
                    const char *data_label, const char *out_dir, search_adapt_result *result,
                    ev_error *err);

/* Training throughput of o's network on random frames: `steps` timed steps (forward, backward,
 * Adam update) after `warmup` untimed ones, batch o->batch, o->threads threads. Writes the mean
 * seconds per step and frames per second. */
int search_train_benchmark(const search_train_options *o, int warmup, int steps,
                           double *seconds_per_step, double *frames_per_second, ev_error *err);

/* ---- evaluation ------------------------------------------------------------------------------ */

#define SEARCH_ECE_BINS 15

/* 95 % intervals by bootstrapping patients (frames of one patient are not independent): each
 * resample draws as many patients as were evaluated, with replacement, keeps all their
 * frames, and scores them; the interval is the 2.5th and 97.5th percentile (linear
 * interpolation) of the resampled accuracies and macro F1s. */
typedef struct search_bootstrap {
    int resamples; /* 0: not computed (asked for none, or fewer than 2 patients) */
    int patients;  /* evaluated patients resampled */
    uint64_t seed;
    double accuracy[2], macro_f1[2]; /* [low, high] */
} search_bootstrap;

typedef struct search_eval_result {
    search_metrics metrics;
    search_bootstrap bootstrap; /* search_bootstrap_intervals; zero until then */
    int64_t *confusion;   /* k x k */
    int32_t *predicted;   /* per dataset frame (-1 when not evaluated) */
    float *confidence;    /* softmax of the logits below */
    float *probabilities; /* per dataset frame x k (softmax), rows of unevaluated frames 0 */
    float *logits;        /* per dataset frame, k each, divided by the model's temperature */
    int64_t clips, clips_correct; /* clip accuracy: mean probabilities over a clip's frames */
    int k;
    /* calibration over the evaluated frames (search_calibration_stats) */
    double ece; /* expected calibration error: SEARCH_ECE_BINS equal-width confidence bins */
    double bin_confidence[SEARCH_ECE_BINS], bin_accuracy[SEARCH_ECE_BINS];
    int64_t bin_count[SEARCH_ECE_BINS];
    double unknown_fraction;  /* frames whose confidence is below the model's threshold */
    double accepted_accuracy; /* accuracy over the other frames */
} search_eval_result;

/* Evaluates model on the frames of split (-1: all) of ds. */
int search_evaluate(const ev_model *model, const search_dataset *ds, int split, int threads,
                    search_eval_result *out, ev_error *err);
void search_eval_result_free(search_eval_result *r);
/* Fills r's ece, bins, unknown_fraction and accepted_accuracy from its predictions and
 * confidences over the frames of split (-1: all); threshold: the model's (0: none). */
void search_calibration_stats(search_eval_result *r, const search_dataset *ds, int split,
                              float threshold);

/* Temperature scaling (Guo et al. 2017) fitted on a validation split, and the `unknown`
 * threshold from the same frames. */
typedef struct search_calibration {
    float temperature;          /* the model's own times the fitted factor */
    float confidence_threshold; /* the reject_fraction quantile of the right answers' confidence */
    double nll_before, nll_after, ece_before, ece_after;
    double unknown_fraction; /* share of the split's frames the threshold turns into unknown */
    int frames;
} search_calibration;
/* Fits the factor s > 0 minimising the mean negative log-likelihood of softmax(logits / s) over
 * the frames of split (golden-section search on log s in [1/20, 20]), then the threshold below
 * which reject_fraction (0..0.5) of the correctly classified frames' calibrated confidences lie
 * (halfway between the two right answers around that quantile). */
int search_calibrate(const ev_model *model, const search_dataset *ds, int split, int threads,
                     double reject_fraction, search_calibration *out, ev_error *err);

/* Clips (dataset clip x label) among the evaluated frames, and those whose mean probability's
 * argmax is their label (search/predictions.c). */
int search_clip_accuracy(const search_dataset *ds, const search_eval_result *r, int64_t *clips,
                         int64_t *correct, ev_error *err);
/* Fills r->bootstrap from r's predictions over the evaluated frames of ds: resamples (1..100000)
 * patient bootstraps drawn from seed. With fewer than 2 evaluated patients there is no
 * interval: r->bootstrap.resamples stays 0 and .patients says how many there were. */
int search_bootstrap_intervals(const search_dataset *ds, search_eval_result *r, int resamples,
                               uint64_t seed, ev_error *err);
/* One CSV row per evaluated frame: file, frame, patient, clip, split, truth, prediction,
 * confidence, p_CLASS... */
int search_write_predictions(const char *path, const ev_model *model, const search_dataset *ds,
                             const search_eval_result *r, ev_error *err);
/* Writes report.json, report.md, predictions.csv, confusion.png and misclassified.png into
 * dir. */
int search_write_report(const char *dir, const ev_model *model, const search_dataset *ds,
                        const search_eval_result *r, int split, ev_error *err);
/* The report as JSON (jansson json_t *, caller decrefs): accuracy, macro_precision,
 * macro_recall, macro_f1, weighted_f1, per_class, confusion. */
void *search_eval_json(const ev_model *model, const search_eval_result *r);

/* ---- small raster plots (PNG via media) ------------------------------------------------------- */

typedef struct search_plot_series {
    const char *name;
    int count;
    const double *x, *y;
} search_plot_series;

int search_plot_lines(const char *path, const char *title, const char *x_label, const char *y_label,
                      const search_plot_series *series, int num_series, ev_error *err);

#endif
