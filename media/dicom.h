/* dicom.h: DICOM behind a C interface (the C++ lives in dicom_shim.cpp, on DCMTK).
 * Reading: single- and multi-frame image files in any transfer syntax DCMTK decodes here
 * (native, RLE, JPEG baseline/extended/lossless), rendered to 8-bit gray or RGB exactly as
 * DCMTK's dcm2pnm renders them (no VOI windowing, MONOCHROME1 inverted, YBR converted to RGB),
 * with per-frame durations from Frame Time / Frame Time Vector / Cine Rate and the ultrasound
 * region from the Sequence of Ultrasound Regions.
 * Writing: multi-frame US cine loops (the phantom's DICOM output).
 * Receiving: a C-STORE service class provider that hands each received file to a callback.
 * Every file and association is untrusted input: errors come back as ev_error, never abort. */
#ifndef ECHOVIEW_MEDIA_DICOM_H
#define ECHOVIEW_MEDIA_DICOM_H

#include "echoview.h"
#include "media.h" /* MEDIA_MAX_DIMENSION */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MEDIA_DICOM_UID_SIZE 65
/* Refuse more frames than this: a hostile Number of Frames must not drive a huge loop. */
#define MEDIA_DICOM_MAX_FRAMES 100000
/* Used when a file has no timing attributes (a still image, a loop without Frame Time). */
#define MEDIA_DICOM_DEFAULT_FRAME_TIME_MS (1000.0 / 30.0)

#define MEDIA_DICOM_SOP_US_MULTIFRAME "1.2.840.10008.5.1.4.1.1.3.1"
#define MEDIA_DICOM_SOP_US_IMAGE "1.2.840.10008.5.1.4.1.1.6.1"

typedef enum media_dicom_timing {
    MEDIA_DICOM_TIMING_DEFAULT = 0,       /* none in the file: MEDIA_DICOM_DEFAULT_FRAME_TIME_MS */
    MEDIA_DICOM_TIMING_FRAME_TIME,        /* (0018,1063) */
    MEDIA_DICOM_TIMING_FRAME_TIME_VECTOR, /* (0018,1065), through the Frame Increment Pointer */
    MEDIA_DICOM_TIMING_CINE_RATE,         /* (0018,0040) */
    MEDIA_DICOM_TIMING_DISPLAY_RATE,      /* Recommended Display Frame Rate (0008,2144) */
} media_dicom_timing;

typedef struct media_dicom_info {
    int width, height;
    int channels; /* 1 (gray) or 3 (RGB) after rendering */
    unsigned frames;
    double frame_time_ms; /* nominal (mean for a Frame Time Vector) */
    media_dicom_timing timing;
    int has_region; /* the ultrasound region, clipped to the frame, in pixels */
    int region_x, region_y, region_width, region_height;
    char sop_class_uid[MEDIA_DICOM_UID_SIZE];
    char transfer_syntax_uid[MEDIA_DICOM_UID_SIZE];
    char photometric[17];
    char series_description[65];
    /* Who and what the loop is (empty when absent): datasets take the patient and the clip
     * from these tags. PatientID is LO (64 characters), the UIDs 64. */
    char patient_id[65];
    char study_instance_uid[MEDIA_DICOM_UID_SIZE];
    char sop_instance_uid[MEDIA_DICOM_UID_SIZE];
} media_dicom_info;

typedef struct media_dicom media_dicom;

/* Opens and validates a file (Pixel Data present, geometry in range, transfer syntax
 * decodable, pixel data long enough for native encodings). Errors name the file and the
 * problem, e.g. "x.dcm: unsupported transfer syntax 1.2.840.10008.1.2.4.90 (JPEG 2000 ...)". */
int media_dicom_open(const char *path, media_dicom **out, ev_error *err);
/* Same from memory (the bytes must outlive the call only); name is used in messages. */
int media_dicom_open_memory(const uint8_t *bytes, size_t size, const char *name, media_dicom **out,
                            ev_error *err);
const media_dicom_info *media_dicom_get_info(const media_dicom *dicom);
/* Display duration of frame index in milliseconds (> 0). */
double media_dicom_frame_duration_ms(const media_dicom *dicom, unsigned index);
/* Renders frame index into dst (height rows of stride bytes, width * channels used). */
int media_dicom_read_frame(media_dicom *dicom, unsigned index, uint8_t *dst, size_t stride,
                           ev_error *err);
void media_dicom_close(media_dicom *dicom);

/* A multi-frame US cine loop: 8-bit MONOCHROME2, Explicit VR Little Endian, SOP class
 * US Multi-frame Image Storage, Frame Time via the Frame Increment Pointer, Cine Rate and one
 * 2D tissue region in the Sequence of Ultrasound Regions. */
typedef struct media_dicom_cine {
    int width, height;
    unsigned frames;
    const uint8_t *pixels; /* frames * height * width bytes, frame after frame */
    double frame_time_ms;
    int region_x, region_y, region_width, region_height;
    const char *patient_id;         /* optional */
    const char *series_description; /* optional: the phantom writes the view name here */
    const char *station_name;       /* optional */
} media_dicom_cine;

int media_dicom_write_cine(const char *path, const media_dicom_cine *cine, ev_error *err);

/* C-STORE service class provider. Accepts US Multi-frame and US Image Storage (and
 * Verification) in native, RLE and JPEG transfer syntaxes; every other SOP class or transfer
 * syntax is refused at association, as are other called AE titles than ae_title and calling AE
 * titles accept_calling_ae refuses. Each received file is written under spool_dir, opened
 * with media_dicom_open (a bad file is answered with a failure status, logged and deleted)
 * and handed to on_file, which owns the file from then on. log receives one line per event. */
/* What the receiver counted (updated as it runs; read it after media_dicom_scp_run returns,
 * or from the log callback's thread). */
typedef struct media_dicom_scp_counters {
    unsigned long associations;     /* handed to a worker */
    unsigned long idle_aborted;     /* connections closed for sending nothing for idle_timeout_s */
    unsigned long busy_refused;     /* associations rejected: max_associations were running */
    unsigned long spool_refused;    /* C-STOREs answered 0xA700: the spool held spool_max_bytes */
    unsigned long stored;           /* C-STOREs answered success */
    unsigned long tls_refused;      /* TLS listener: plaintext requests and failed handshakes */
} media_dicom_scp_counters;

typedef struct media_dicom_scp_config {
    const char *bind_address; /* numeric IPv4 address to listen on; NULL: 127.0.0.1 */
    int port;
    const char *ae_title; /* called AE title we answer to */
    const char *spool_dir;
    int acse_timeout_s, dimse_timeout_s;
    int max_associations; /* served at once (> 0; more are rejected, transient) */
    int idle_timeout_s;   /* a connection that sends nothing this long is closed (> 0) */
    unsigned long long spool_max_bytes; /* refuse C-STOREs (0xA700) while spool_dir holds
                                           more; 0: no cap */
    /* DICOM TLS (DCMTK's TLS layer, the non-downgrading BCP 195 profile): PEM files. With
     * tls_certificate NULL the listener is plaintext; else every connection must be TLS. */
    const char *tls_certificate, *tls_key;
    const char *tls_ca;          /* trusted CAs for client certificates; NULL: none */
    int tls_require_client_cert; /* refuse a client without a certificate tls_ca signed */
    media_dicom_scp_counters *counters; /* optional */
    void (*on_file)(void *user, const char *path, const char *calling_ae,
                    const media_dicom_info *info);
    void (*log)(void *user, int is_error, const char *line);
    int (*should_stop)(void *user); /* polled about once a second */
    /* optional: non-zero when a calling AE title may store here (else it is refused) */
    int (*accept_calling_ae)(void *user, const char *calling_ae);
    void *user;
} media_dicom_scp_config;

/* Listens on bind_address:port and serves up to max_associations associations at once, each
 * on its own thread (on_file, log and accept_calling_ae are then called from those threads),
 * until should_stop returns non-zero; it then waits for the running associations to end. A
 * connection counts as idle until its A-ASSOCIATE-RQ has arrived whole, so a silent or
 * trickling client holds no worker; inside an association silence is bounded by
 * dimse_timeout_s (the association is aborted). */
int media_dicom_scp_run(const media_dicom_scp_config *config, ev_error *err);

/* Loads the TLS files of config as media_dicom_scp_run would (certificate, key, their match,
 * CA) and says what is wrong with them; EV_OK when TLS is off or the files are good. A build
 * without DCMTK's TLS layer refuses a TLS configuration. */
int media_dicom_tls_check(const media_dicom_scp_config *config, ev_error *err);

/* A short human name for a transfer syntax UID ("RLE Lossless"), or the UID itself. */
const char *media_dicom_transfer_syntax_name(const char *uid);

#ifdef __cplusplus
}
#endif

#endif
