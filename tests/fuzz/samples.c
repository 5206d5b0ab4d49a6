/* samples.c - valid messages of every type; see samples.h. */
#include "samples.h"

#include <string.h>

#include "wire.h"

static const uint8_t op[] = "transfer 10 from a to b";
static const uint8_t auth[PBFT_SIG_LEN] = {1, 2, 3};
static const uint8_t blob[] = "batch-or-chunk-bytes";

static struct pbft_sigpair pairs[3] = {{1, {7}}, {2, {8}}, {3, {9}}};
static struct pbft_vc_entry claims[3] = {{.view = 0, .seq = 5, .digest = {5}},
    {.view = 1, .seq = 6, .digest = {6}}, {.view = 1, .seq = 6, .digest = {7}}};
static struct pbft_view_change vcs[2] = {{.view = 2,
                                             .stable_seq = 4,
                                             .stable_digest = {4},
                                             .nckpt = 3,
                                             .ckpt = pairs,
                                             .nprepared = 2,
                                             .prepared = claims,
                                             .npreprepared = 3,
                                             .preprepared = claims,
                                             .replica = 1,
                                             .sig = {1}},
    {.view = 2,
        .stable_seq = 0,
        .nckpt = 0,
        .ckpt = pairs,
        .nprepared = 0,
        .prepared = claims,
        .replica = 2,
        .sig = {2}}};
static struct pbft_nv_preprepare pps[3] = {{.seq = 5, .digest = {5}},
    {.seq = 6, .digest = {0}}, {.seq = 7, .digest = {7}}};

int
sample_frame(int i, struct wbuf *wb)
{
	struct pbft_msg m;

	memset(&m, 0, sizeof(m));
	switch (i) {
	case 0:
		m.type = PBFT_MSG_HELLO;
		m.u.hello = (struct pbft_hello){.role = PBFT_ROLE_CLIENT,
		    .id = 3,
		    .eph_pub = {1, 2},
		    .nonce = {3, 4}};
		break;
	case 1:
		m.type = PBFT_MSG_AUTH;
		m.u.auth.sig[0] = 0x42;
		break;
	case 2:
		m.type = PBFT_MSG_REQUEST;
		m.u.request = (struct pbft_request){.client = 2,
		    .timestamp = 1234567,
		    .op_len = sizeof(op),
		    .op = op,
		    .auth_len = PBFT_SIG_LEN,
		    .auth = auth};
		break;
	case 3:
		m.type = PBFT_MSG_REPLY;
		m.u.reply = (struct pbft_reply){.view = 1,
		    .timestamp = 99,
		    .client = 2,
		    .replica = 3,
		    .seq = 17,
		    .status = 1,
		    .result_len = 8,
		    .result = blob};
		break;
	case 4:
		m.type = PBFT_MSG_PREPREPARE;
		m.u.preprepare = (struct pbft_preprepare){.view = 1,
		    .seq = 2,
		    .digest = {9},
		    .replica = 1,
		    .batch_len = sizeof(blob),
		    .batch = blob};
		break;
	case 5:
	case 6:
		m.type = i == 5 ? PBFT_MSG_PREPARE : PBFT_MSG_COMMIT;
		m.u.prepare = (struct pbft_vote){
		    .view = 1, .seq = 2, .digest = {9}, .replica = 2};
		break;
	case 7:
		m.type = PBFT_MSG_CHECKPOINT;
		m.u.checkpoint = (struct pbft_checkpoint){
		    .seq = 100, .digest = {1}, .replica = 3, .sig = {5}};
		break;
	case 8:
		m.type = PBFT_MSG_VIEW_CHANGE;
		m.u.view_change = vcs[0];
		break;
	case 9:
		m.type = PBFT_MSG_NEW_VIEW;
		m.u.new_view = (struct pbft_new_view){.view = 2,
		    .nvc = 2,
		    .vcs = vcs,
		    .npp = 3,
		    .pps = pps,
		    .replica = 2,
		    .sig = {6}};
		break;
	case 10:
		m.type = PBFT_MSG_FETCH_BATCH;
		m.u.fetch_batch = (struct pbft_fetch_batch){
		    .seq = 6, .digest = {6}, .replica = 1};
		break;
	case 11:
		m.type = PBFT_MSG_BATCH;
		m.u.batch = (struct pbft_batch){.seq = 6,
		    .digest = {6},
		    .replica = 2,
		    .batch_len = sizeof(blob),
		    .batch = blob};
		break;
	case 12:
		m.type = PBFT_MSG_FETCH_STATE;
		m.u.fetch_state = (struct pbft_fetch_state){
		    .seq = 200, .digest = {2}, .index = 3, .replica = 1};
		break;
	case 13:
		m.type = PBFT_MSG_STATE_CHUNK;
		m.u.state_chunk = (struct pbft_state_chunk){.seq = 200,
		    .digest = {2},
		    .index = 3,
		    .count = 9,
		    .total_len = 9000,
		    .replica = 2,
		    .data_len = sizeof(blob),
		    .data = blob};
		break;
	case 14:
		m.type = PBFT_MSG_ANNOUNCE;
		m.u.announce = (struct pbft_announce){.replica = 3,
		    .epoch = 1234,
		    .host_len = 9,
		    .host = (const uint8_t *)"127.0.0.1",
		    .port = 7003,
		    .sig = {7}};
		break;
	case 15:
		m.type = PBFT_MSG_STATUS;
		m.u.status = (struct pbft_status_msg){.view = 3,
		    .low = 200,
		    .last_exec = 207,
		    .replica = 2,
		    .flags = PBFT_STATUS_ASK};
		break;
	default:
		return -1;
	}
	return wire_encode(wb, &m);
}
