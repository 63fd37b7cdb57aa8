package schema

import (
	"github.com/invopop/jsonschema"
)

// The shapes of the files as an editor sees them. They exist to generate
// the schemas; package campaign decodes the files by hand, and a test
// holds the two to the same keys.

// Campaign is a campaigns/*.yaml file.
type Campaign struct {
	Name             string         `json:"name" jsonschema:"required,pattern=^[a-z0-9-]+$" jsonschema_description:"The campaign's unique name: a-z, 0-9 and -."`
	Description      string         `json:"description,omitempty" jsonschema_description:"What the campaign is for."`
	Enabled          *bool          `json:"enabled,omitempty" jsonschema:"default=true" jsonschema_description:"false keeps the campaign without sending it."`
	Schedule         string         `json:"schedule,omitempty" jsonschema:"minLength=1" jsonschema_description:"When the campaign runs: 5-field cron or a descriptor (@daily, @every 1h), in UTC. Exactly one of schedule and trigger."`
	Trigger          *Trigger       `json:"trigger,omitempty" jsonschema_description:"Start the campaign on an event or a stage entry. Exactly one of schedule and trigger."`
	Priority         int            `json:"priority,omitempty" jsonschema:"default=0" jsonschema_description:"Higher goes first when the global frequency cap lets only some emails through."`
	SendWindow       CampaignWindow `json:"send_window,omitempty" jsonschema_description:"When emails may go out; any ignores the default of settings.yaml."`
	Audience         *Audience      `json:"audience,omitempty" jsonschema_description:"Who the campaign targets."`
	Frequency        *Frequency     `json:"frequency,omitempty" jsonschema_description:"How often one customer may receive the campaign."`
	Email            *Email         `json:"email,omitempty" jsonschema_description:"The one email the campaign sends. Exactly one of email and steps."`
	Steps            []Step         `json:"steps,omitempty" jsonschema:"minItems=1" jsonschema_description:"A journey: emails sent in order after the start. Exactly one of email and steps."`
	ExitWhen         string         `json:"exit_when,omitempty" jsonschema:"minLength=1" jsonschema_description:"Expression that ends the journey (or a triggered email) when true."`
	Variants         []Variant      `json:"variants,omitempty" jsonschema:"minItems=1" jsonschema_description:"Split a single-email campaign's entries by weight."`
	Holdout          Share          `json:"holdout,omitempty" jsonschema_description:"Share of entries held out: recorded, never sent."`
	ConversionWindow Duration       `json:"conversion_window,omitempty" jsonschema_description:"How long after a send a purchase is attributed to the campaign; default from settings.yaml, else 120h."`
	Tracking         *Tracking      `json:"tracking,omitempty" jsonschema_description:"Open and click tracking; each key left out takes the default of settings.yaml, else false. Needs PUBLIC_URL and SECRET."`
	Queue            string         `json:"queue,omitempty" jsonschema:"pattern=^[a-z0-9_-]+$,default=default" jsonschema_description:"The Asynq queue."`
}

// Tracking turns open and click tracking on or off.
type Tracking struct {
	Opens  *bool `json:"opens,omitempty" jsonschema_description:"Add an open pixel to the HTML part."`
	Clicks *bool `json:"clicks,omitempty" jsonschema_description:"Send links through the click redirect."`
}

// JSONSchemaExtend says what the tags cannot: one start, one content.
func (Campaign) JSONSchemaExtend(s *jsonschema.Schema) {
	s.AllOf = append(s.AllOf, exactlyOne("schedule", "trigger"), exactlyOne("email", "steps"))
}

// Trigger starts a campaign on an event or on a stage entry.
type Trigger struct {
	Event        string   `json:"event,omitempty" jsonschema:"minLength=1" jsonschema_description:"Every event of this type starts the campaign once."`
	EnteredStage string   `json:"entered_stage,omitempty" jsonschema:"pattern=^[a-z0-9_-]+$" jsonschema_description:"A customer seen entering this stage starts the campaign."`
	Where        string   `json:"where,omitempty" jsonschema:"minLength=1" jsonschema_description:"Expression over event and the facts; events for which it is false are ignored. Event triggers only."`
	Delay        Duration `json:"delay,omitempty" jsonschema_description:"Due this long after the event or the stage entry (default 0)."`
	Within       Duration `json:"within,omitempty" jsonschema_description:"Dropped when not planned within this long after its due time (default 24h)."`
}

// JSONSchemaExtend requires one of event and entered_stage.
func (Trigger) JSONSchemaExtend(s *jsonschema.Schema) {
	s.AllOf = append(s.AllOf, exactlyOne("event", "entered_stage"))
}

// Window is a send window: local wall-clock hours on allowed days.
type Window struct {
	Start    Clock  `json:"start" jsonschema:"required" jsonschema_description:"Local time the window opens, HH:MM."`
	End      Clock  `json:"end" jsonschema:"required" jsonschema_description:"Local time the window closes, HH:MM, after start."`
	Days     []Day  `json:"days,omitempty" jsonschema:"minItems=1,uniqueItems=true" jsonschema_description:"Allowed days (default: every day)."`
	Timezone string `json:"timezone,omitempty" jsonschema:"minLength=1,default=customer" jsonschema_description:"customer (the customer's own zone) or an IANA name such as Europe/Paris."`
}

// CampaignWindow is a campaign's send window, or "any".
type CampaignWindow struct{}

// JSONSchema is a window or the word any.
func (CampaignWindow) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{
		{Const: "any", Description: "Send at any time, whatever settings.yaml says."},
		{Ref: "#/$defs/Window"},
	}}
}

// Audience selects who a campaign targets.
type Audience struct {
	Stages       []string      `json:"stages,omitempty" jsonschema:"uniqueItems=true" jsonschema_description:"Lifecycle stages targeted (empty: all)."`
	InactiveDays *InactiveDays `json:"inactive_days,omitempty" jsonschema_description:"Inclusive bounds on whole days since the customer was last active."`
	Where        string        `json:"where,omitempty" jsonschema_description:"Expression over the customer's facts; must be true."`
}

// InactiveDays bounds inactive_days.
type InactiveDays struct {
	Min *int `json:"min,omitempty" jsonschema:"minimum=0"`
	Max *int `json:"max,omitempty" jsonschema:"minimum=0"`
}

// Frequency limits how often one customer receives a campaign.
type Frequency struct {
	Cooldown   Duration `json:"cooldown,omitempty" jsonschema_description:"No email (or journey entry) of this campaign to a customer within this long of the last."`
	MaxSends   *int     `json:"max_sends,omitempty" jsonschema:"minimum=0" jsonschema_description:"Lifetime cap on emails per customer; single-email campaigns."`
	MaxEntries *int     `json:"max_entries,omitempty" jsonschema:"minimum=0" jsonschema_description:"Lifetime cap on journey entries per customer; journeys."`
}

// Email names a single-email campaign's template and sender.
type Email struct {
	Template string `json:"template" jsonschema:"required,pattern=^[A-Za-z0-9_-]+$" jsonschema_description:"templates/NAME.subject.tmpl, .html.tmpl and optional .txt.tmpl."`
	From     string `json:"from,omitempty" jsonschema:"minLength=1" jsonschema_description:"Sender, e.g. Shop <hello@example.com> (default from settings)."`
}

// Step is one email of a journey.
type Step struct {
	Template string   `json:"template" jsonschema:"required,pattern=^[A-Za-z0-9_-]+$"`
	After    Duration `json:"after,omitempty" jsonschema_description:"Time after the journey's start; not less than the step before (default 0)."`
	Where    string   `json:"where,omitempty" jsonschema:"minLength=1" jsonschema_description:"Expression; false skips this step and the journey goes on."`
}

// Variant is one arm of an experiment.
type Variant struct {
	Name     string `json:"name" jsonschema:"required,pattern=^[a-z0-9-]+$" jsonschema_description:"a-z, 0-9 and -; holdout is reserved."`
	Weight   *int   `json:"weight,omitempty" jsonschema:"minimum=1,default=1"`
	Template string `json:"template,omitempty" jsonschema:"pattern=^[A-Za-z0-9_-]+$" jsonschema_description:"Replaces the campaign's template."`
	Subject  string `json:"subject,omitempty" jsonschema:"minLength=1" jsonschema_description:"Replaces the template's subject; a template itself."`
	From     string `json:"from,omitempty" jsonschema:"minLength=1" jsonschema_description:"Replaces the sender."`
}

// JSONSchemaExtend reserves the name holdout.
func (Variant) JSONSchemaExtend(s *jsonschema.Schema) {
	if name, ok := s.Properties.Get("name"); ok {
		name.Not = &jsonschema.Schema{Const: "holdout"}
	}
}

// Lifecycle is campaigns/lifecycle.yaml.
type Lifecycle struct {
	Stages []Stage `json:"stages" jsonschema:"required,minItems=1" jsonschema_description:"Checked in order: a customer is in the first stage whose when is true."`
}

// Stage is one lifecycle stage.
type Stage struct {
	Name string `json:"name" jsonschema:"required,pattern=^[a-z0-9_-]+$"`
	When string `json:"when,omitempty" jsonschema_description:"Expression over the facts; absent matches everyone and must be last."`
}

// Settings is campaigns/settings.yaml.
type Settings struct {
	From             string        `json:"from,omitempty" jsonschema:"minLength=1" jsonschema_description:"Default sender; MAIL_FROM overrides it, a campaign's email.from both."`
	FrequencyCap     *FrequencyCap `json:"frequency_cap,omitempty" jsonschema_description:"At most max emails per customer within any interval of length per, across campaigns."`
	SendWindow       *Window       `json:"send_window,omitempty" jsonschema_description:"Default send window of campaigns that set none (absent: any time)."`
	ConversionWindow Duration      `json:"conversion_window,omitempty" jsonschema_description:"Default attribution window."`
	RateLimits       *RateLimits   `json:"rate_limits,omitempty" jsonschema_description:"How fast all worker processes together may hand emails to the SMTP server."`
	Tracking         *Tracking     `json:"tracking,omitempty" jsonschema_description:"Default open and click tracking of every campaign (absent: none)."`
	SoftBounceLimit  *SoftBounces  `json:"soft_bounce_limit,omitempty" jsonschema_description:"Soft bounces that suppress an address: count within any interval of length per (absent: 3 per 720h)."`
}

// RateLimits are the send-rate throttles.
type RateLimits struct {
	Global  *Rate           `json:"global,omitempty" jsonschema_description:"Cap on every email together, e.g. 200/s."`
	Domains map[string]Rate `json:"domains,omitempty" jsonschema_description:"Cap per recipient domain (matched exactly, in lower case), e.g. gmail.com: 20/s."`
}

// JSONSchemaExtend says which keys are domains.
func (RateLimits) JSONSchemaExtend(s *jsonschema.Schema) {
	if d, ok := s.Properties.Get("domains"); ok {
		d.PropertyNames = &jsonschema.Schema{Pattern: `^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`}
	}
}

// Rate is N emails per second, minute or hour.
type Rate struct{}

// JSONSchema is N/s, N/m or N/h.
func (Rate) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^\s*[1-9][0-9]{0,6}/[smh]\s*$`,
		Description: "A rate: 20/s, 600/m or 1000/h."}
}

// SoftBounces is the soft bounce limit.
type SoftBounces struct {
	Count int      `json:"count" jsonschema:"required,minimum=1"`
	Per   Duration `json:"per" jsonschema:"required"`
}

// FrequencyCap is the global cap.
type FrequencyCap struct {
	Max int      `json:"max" jsonschema:"required,minimum=1"`
	Per Duration `json:"per" jsonschema:"required"`
}

// Duration is a Go duration (720h, 90m) or whole days (30d, 1d12h), or 0.
type Duration struct{}

// JSONSchema spells the durations campaign.Load accepts.
func (Duration) JSONSchema() *jsonschema.Schema {
	const unit = `[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h)`
	return &jsonschema.Schema{
		Description: "A duration: 720h, 90m, 30d or 1d12h.",
		AnyOf: []*jsonschema.Schema{
			{Type: "string", Pattern: `^\s*(0|[0-9]+d(` + unit + `)*|(` + unit + `)+)\s*$`},
			{Const: 0},
		},
	}
}

// Clock is a wall-clock time, HH:MM.
type Clock struct{}

// JSONSchema is 00:00 to 24:00.
func (Clock) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^\s*(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)\s*$`}
}

// Day is a day of the week.
type Day struct{}

// JSONSchema lists the days.
func (Day) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Enum: []any{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}}
}

// Share is a percentage with at most two decimals, such as 10% or 2.5%.
type Share struct{}

// JSONSchema is the form; the range (more than 0%, less than 100%) is
// checked by lint.
func (Share) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Pattern: `^\s*[0-9]{1,5}(\.[0-9]{1,2})?%\s*$`}
}

// exactlyOne is a schema requiring exactly one of two keys.
func exactlyOne(a, b string) *jsonschema.Schema {
	return &jsonschema.Schema{OneOf: []*jsonschema.Schema{{Required: []string{a}}, {Required: []string{b}}}}
}
